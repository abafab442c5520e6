package retention

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Snapshot is one existing snapshot of the dataset being pruned.
type Snapshot struct {
	Name      string `json:"name"`      // the part after '@'
	Created   int64  `json:"created"`   // ZFS creation property, unix seconds
	GUID      uint64 `json:"guid"`      // ZFS guid property
	CreateTxg uint64 `json:"createtxg"` // orders snapshots created in the same second
	Held      bool   `json:"held"`      // has a zcloud user hold
}

// CreatedTime returns Created as a time.Time in UTC.
func (s Snapshot) CreatedTime() time.Time { return time.Unix(s.Created, 0).UTC() }

// Protection marks a snapshot that must survive, e.g. the newest common
// snapshot with a replication target or the base of the archive chain.
type Protection struct {
	Name   string `json:"name"`
	Reason string `json:"reason"` // shown verbatim, e.g. "newest common snapshot with target backup1"
}

// PlanInput is everything Plan looks at.
type PlanInput struct {
	Policy    Policy
	Location  *time.Location // must be the zone named by Policy.TimeZone
	Now       time.Time      // recorded in the plan; buckets depend only on the snapshots
	Snapshots []Snapshot
	Protected []Protection
	// IncludeForeign lets the policy prune snapshots not named by zcloud.
	IncludeForeign bool
}

// Action is what a plan does with one snapshot.
type Action string

// The actions.
const (
	Keep    Action = "keep"
	Destroy Action = "destroy"
)

// Bucket is one period a snapshot is the keeper of.
type Bucket struct {
	Kind  Kind   `json:"kind"`
	Label string `json:"label"` // e.g. "daily 2026-11-20"
	Rank  int    `json:"rank"`  // 1 is the most recent period of this kind
	Of    int    `json:"of"`    // the policy's count for this kind
}

// Reason renders the bucket as a human-readable reason.
func (b Bucket) Reason() string { return fmt.Sprintf("%s (%d of %d)", b.Label, b.Rank, b.Of) }

// Decision is the plan for one snapshot.
type Decision struct {
	Snapshot     Snapshot `json:"snapshot"`
	CreatedLocal string   `json:"created_local"` // creation in the policy's zone, for display
	Action       Action   `json:"action"`
	Reasons      []string `json:"reasons"`
	Buckets      []Bucket `json:"buckets,omitempty"`
	// Managed is true when the policy governs the snapshot (zcloud's, or any
	// snapshot with IncludeForeign); NeedsApproval counts only these.
	Managed bool `json:"managed"`
}

// PrunePlan is the Keep/Destroy decision for every snapshot, oldest first.
type PrunePlan struct {
	Now       time.Time  `json:"now"`
	TimeZone  string     `json:"time_zone"`
	Decisions []Decision `json:"decisions"`
	// Warnings lists protections that name no existing snapshot: the caller's
	// chain may be broken and a person should look.
	Warnings []string `json:"warnings,omitempty"`
}

// Reasons given by Plan besides bucket and protection reasons.
const (
	ReasonNewest    = "newest snapshot"
	ReasonNewestOwn = "newest zcloud snapshot"
	ReasonHeld      = "held by zcloud"
	ReasonForeign   = "not taken by zcloud"
	ReasonNoBucket  = "kept by no bucket of the policy"
)

// Plan decides which snapshots to keep and destroy. It refuses an invalid
// policy (an empty one would destroy nearly everything) and a location that
// is not the policy's zone.
func Plan(in PlanInput) (PrunePlan, error) {
	p := in.Policy.WithDefaults()
	if err := p.Validate(); err != nil {
		return PrunePlan{}, err
	}
	if in.Location == nil {
		return PrunePlan{}, errors.New("retention plan: no location given")
	}
	if in.Location.String() != p.TimeZone {
		return PrunePlan{}, fmt.Errorf("retention plan: location %q is not the policy's time_zone %q", in.Location, p.TimeZone)
	}

	snaps := sortedSnapshots(in.Snapshots)
	decisions := make([]Decision, len(snaps))
	var managed []int // indexes into snaps, oldest first
	for i, s := range snaps {
		_, ours := ParseSnapshotName(p.Prefix, s.Name)
		decisions[i] = Decision{
			Snapshot:     s,
			CreatedLocal: s.CreatedTime().In(in.Location).Format("2006-01-02 15:04:05 MST"),
			Managed:      ours || in.IncludeForeign,
		}
		if decisions[i].Managed {
			managed = append(managed, i)
		}
	}

	assignBuckets(p, newCalendar(p, in.Location), snaps, managed, decisions)
	for i := range decisions {
		decisions[i].Reasons = bucketReasons(decisions[i].Buckets)
	}
	if n := len(snaps); n > 0 {
		decisions[n-1].Reasons = append(decisions[n-1].Reasons, ReasonNewest)
	}
	if n := len(managed); n > 0 && managed[n-1] != len(snaps)-1 {
		// Keep zcloud's own newest too: Due compares against it.
		last := managed[n-1]
		decisions[last].Reasons = append(decisions[last].Reasons, ReasonNewestOwn)
	}
	warnings := applyGuards(in.Protected, decisions)

	for i := range decisions {
		d := &decisions[i]
		if len(d.Reasons) > 0 {
			d.Action = Keep
			continue
		}
		d.Action = Destroy
		d.Reasons = []string{ReasonNoBucket}
	}
	return PrunePlan{Now: in.Now, TimeZone: p.TimeZone, Decisions: decisions, Warnings: warnings}, nil
}

// sortedSnapshots copies and orders snapshots oldest first; every field takes
// part so equal inputs in any order give the same result.
func sortedSnapshots(in []Snapshot) []Snapshot {
	out := append([]Snapshot(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Created != b.Created {
			return a.Created < b.Created
		}
		if a.CreateTxg != b.CreateTxg {
			return a.CreateTxg < b.CreateTxg
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.GUID < b.GUID
	})
	return out
}
