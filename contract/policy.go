package contract

import (
	"time"

	"zcloud/retention"
	"zcloud/zfsname"
)

// Hold tags other features leave on the source, and what they mean.
const (
	// HoldTagPrefix starts every tag zcloud puts on a snapshot; replication
	// holds its newest base with HoldTagPrefix + target.
	HoldTagPrefix = "zcloud-"
	// ArchiveHoldTag holds the base of the current archive chain.
	ArchiveHoldTag = "zcloud-archive"
)

// PolicySnapshot is one snapshot as the policy sees it.
type PolicySnapshot struct {
	Name      string `json:"name"` // the part after '@'
	Created   int64  `json:"created"`
	GUID      uint64 `json:"guid"`
	CreateTxg uint64 `json:"createtxg"`
	// Holds is the snapshot's userrefs; HoldTags names them where the ZFS
	// can list holds (OpenZFS; zfs-fuse cannot).
	Holds    int      `json:"holds"`
	HoldTags []string `json:"hold_tags,omitempty"`
	// HeldBelow lists descendants whose same-named snapshot is held
	// ("child: 1 hold"), for recursive policies: destroy -r would fail there.
	HeldBelow []string `json:"held_below,omitempty"`
}

// SnapshotListing is a dataset's snapshots, oldest first.
type SnapshotListing struct {
	Dataset   string           `json:"dataset"`
	Snapshots []PolicySnapshot `json:"snapshots"`
	// TagsListed says whether hold tags could be listed (else only counts).
	TagsListed bool   `json:"tags_listed"`
	ZFS        string `json:"zfs"`
}

// DueRequest asks whether a snapshot is due at Now.
type DueRequest struct {
	Dataset zfsname.Dataset  `json:"dataset"`
	Policy  retention.Policy `json:"policy"`
	Now     time.Time        `json:"now"`
}

// DueReport says which kinds' current periods have no snapshot yet.
type DueReport struct {
	Due       bool             `json:"due"`
	Kinds     []retention.Kind `json:"kinds,omitempty"`
	LastTaken time.Time        `json:"last_taken"` // creation of zcloud's newest snapshot; zero if none
	LastName  string           `json:"last_name,omitempty"`
}

// PlanRequest is everything a prune plan depends on.
type PlanRequest struct {
	Dataset        zfsname.Dataset        `json:"dataset"`
	Policy         retention.Policy       `json:"policy"`
	Now            time.Time              `json:"now"`
	IncludeForeign bool                   `json:"include_foreign"`
	Protected      []retention.Protection `json:"protected,omitempty"`
	// MaxDestroyCount and MaxDestroyPercent: -1 is off (retention.NeedsApproval).
	MaxDestroyCount   int     `json:"max_destroy_count"`
	MaxDestroyPercent float64 `json:"max_destroy_percent"`
}

// PlannedDestroy pins a snapshot to destroy by name and GUID, so a
// same-named snapshot created after the plan is never destroyed by it.
type PlannedDestroy struct {
	Name string `json:"name"`
	GUID uint64 `json:"guid"`
}

// PlanReport is a prune plan with its approval verdict.
type PlanReport struct {
	// ID names the plan's destroy set; an approval must quote it.
	ID            string              `json:"id"`
	Dataset       string              `json:"dataset"`
	Plan          retention.PrunePlan `json:"plan"`
	Destroy       []PlannedDestroy    `json:"destroy,omitempty"`
	NeedsApproval bool                `json:"needs_approval"`
	// Verdict explains NeedsApproval ("destroys 12 of 40 ... more than 10 snapshots").
	Verdict    string `json:"verdict"`
	TagsListed bool   `json:"tags_listed"`
}

// DestroyRequest destroys the snapshots a plan chose.
type DestroyRequest struct {
	Dataset   zfsname.Dataset  `json:"dataset"`
	Recursive bool             `json:"recursive"` // zfs destroy -r: the same-named snapshots of descendants too
	PlanID    string           `json:"plan_id"`
	Snapshots []PlannedDestroy `json:"snapshots"`
}

// Skipped is a planned snapshot left alone, and why.
type Skipped struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// DestroyReport says what happened to each planned snapshot.
type DestroyReport struct {
	Destroyed []string  `json:"destroyed"`
	Skipped   []Skipped `json:"skipped,omitempty"`
}

// Reasons DestroySnapshots skips a planned snapshot for.
const (
	SkipGone    = "already gone"
	SkipChanged = "replaced since the plan (different guid)"
)
