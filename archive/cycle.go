package archive

import (
	"fmt"
	"time"

	"zcloud/cloud/objstore"
)

// MinStorageDuration is the minimum billed storage of a class: deleting
// earlier is charged as if stored that long, so rotation waits for it.
func MinStorageDuration(c objstore.Class) time.Duration {
	const day = 24 * time.Hour
	switch c {
	case objstore.Glacier, objstore.GlacierIR:
		return 90 * day
	case objstore.DeepArchive:
		return 180 * day
	}
	return 0
}

// CycleDue reports whether the next archive run should start a new cycle
// with a full stream: no cycle yet, the current one has no full, or it
// started at least period ago.
func CycleDue(m *Manifest, now time.Time, period time.Duration) bool {
	c := m.Current()
	if c == nil {
		return true
	}
	if _, ok := c.Full(); !ok {
		return true
	}
	return !now.Before(c.Started.Add(period))
}

// SanityCheck refuses a new full that is much smaller than the previous
// one (a dataset emptied by mistake or an attacker must not rotate the good
// archive away): newFull.PlainSize must be at least minPercent % of
// prevFull's. A zero prevFull (first cycle) passes.
func SanityCheck(newFull, prevFull Stream, minPercent float64) error {
	if prevFull.ID == "" || prevFull.PlainSize == 0 {
		return nil
	}
	floor := float64(prevFull.PlainSize) * minPercent / 100
	if float64(newFull.PlainSize) < floor {
		return fmt.Errorf("sanity check: new full %s is %d bytes, %.1f%% of the previous full %s (%d bytes); at least %.0f%% is required",
			newFull.ID, newFull.PlainSize, 100*float64(newFull.PlainSize)/float64(prevFull.PlainSize), prevFull.ID, prevFull.PlainSize, minPercent)
	}
	return nil
}

// DeletableCycles lists the cycles that rotation may delete now: never the
// current cycle nor the keep-1 cycles before it (keep < 1 counts as 1),
// none at all until the current cycle is Verified, and only cycles whose
// every stream has been stored for its class's minimum duration — unless
// force, which waives the minimum duration only.
func DeletableCycles(m *Manifest, now time.Time, minStorage func(objstore.Class) time.Duration, force bool, keep int) []Cycle {
	cur := m.Current()
	if cur == nil || cur.Verified.IsZero() {
		return nil
	}
	if minStorage == nil {
		minStorage = MinStorageDuration
	}
	keep = max(keep, 1)
	if len(m.Cycles) <= keep {
		return nil
	}
	var out []Cycle
	for _, c := range m.Cycles[:len(m.Cycles)-keep] {
		ok := true
		for _, s := range c.Streams {
			if !force && now.Before(s.Uploaded.Add(minStorage(s.Class))) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// StoragePerGBMonth is what a GB (2^30 bytes) stored costs per month by
// class: AWS us-east-1 list prices as of 2025 (S3 pricing page; a Glacier
// vault's archives cost what GLACIER does). A variable, like Prices, for
// deployments to update.
var StoragePerGBMonth = map[objstore.Class]float64{
	objstore.Standard:    0.023,
	objstore.GlacierIR:   0.004,
	objstore.Glacier:     0.0036,
	objstore.DeepArchive: 0.00099,
}

// Per object, GLACIER and DEEP_ARCHIVE also bill 32 KiB at the class's
// price (index) and 8 KiB at STANDARD's (name and metadata).
const (
	coldObjectOverhead     = 32 << 10
	standardObjectOverhead = 8 << 10
)

// MonthlyUSD is what storing the cycle costs per month in its streams'
// classes, parity objects and per-object overhead included.
func (c *Cycle) MonthlyUSD() float64 {
	var usd float64
	for _, s := range c.Streams {
		price := StoragePerGBMonth[s.Class]
		bytes := float64(s.StoredSize + s.ParityBytes())
		if s.Class == objstore.Glacier || s.Class == objstore.DeepArchive {
			n := float64(len(s.ObjectKeys()))
			bytes += n * coldObjectOverhead
			usd += n * standardObjectOverhead / (1 << 30) * StoragePerGBMonth[objstore.Standard]
		}
		usd += bytes / (1 << 30) * price
	}
	return usd
}
