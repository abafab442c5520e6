package retention

import (
	"strings"
	"time"
)

// nameLayout is a compact UTC timestamp: digits and letters only, so it sorts
// as text, needs no quoting in a shell and fits every ZFS implementation.
const nameLayout = "20060102T150405Z"

// SnapshotName returns the name (the part after '@') zcloud gives a snapshot
// taken at t: prefix, '_', UTC time to the second, e.g. zcloud_20261122T170000Z.
func SnapshotName(prefix string, t time.Time) string {
	return prefix + "_" + t.UTC().Format(nameLayout)
}

// ParseSnapshotName returns the time in a name made by SnapshotName with this
// prefix. Any other name, even one differing only in form, is not zcloud's.
func ParseSnapshotName(prefix, name string) (time.Time, bool) {
	stamp, ok := strings.CutPrefix(name, prefix+"_")
	if !ok || len(stamp) != len(nameLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(nameLayout, stamp)
	if err != nil {
		return time.Time{}, false
	}
	// Round-trip so only the one canonical spelling of a time counts.
	if SnapshotName(prefix, t) != name {
		return time.Time{}, false
	}
	return t, true
}
