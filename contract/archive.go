package contract

import (
	"time"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/zfsname"
)

// Archive plan actions.
const (
	ArchiveFull        = "full"
	ArchiveIncremental = "incremental"
	ArchiveSkip        = "skip"
)

// ArchiveLimits are the safety limits an archive run asks for. Each may be
// stricter than the worker's config, never looser.
type ArchiveLimits struct {
	SanityMinPercent float64 `json:"sanity_min_percent"`
	AcceptSmaller    bool    `json:"accept_smaller,omitempty"`
	Force            bool    `json:"force,omitempty"`
	MaxDeleteCycles  int     `json:"max_delete_cycles"`
	MaxDeleteBytes   int64   `json:"max_delete_bytes"`
}

// ArchivePlanRequest asks what the next archive run of Dataset should do.
type ArchivePlanRequest struct {
	Dataset zfsname.Dataset `json:"dataset"`
	Now     time.Time       `json:"now"`    // the workflow's time; a new cycle is named after it
	Period  time.Duration   `json:"period"` // cycle length
	// Limits are the run's safety limits, checked against the config here,
	// before anything is sent (later steps check their own again).
	Limits *ArchiveLimits `json:"limits,omitempty"`
}

// ArchivePlan is the decision: a full (new cycle), an incremental from the
// chain's tip, or nothing, and why.
type ArchivePlan struct {
	Dataset string               `json:"dataset"`
	Action  string               `json:"action"`
	Reason  string               `json:"reason"`
	Kind    archivetypes.Kind    `json:"kind,omitempty"`
	From    archivetypes.SnapRef `json:"from,omitzero"`
	To      archivetypes.SnapRef `json:"to,omitzero"`
	Cycle   string               `json:"cycle,omitempty"` // the cycle the stream goes into
	// The chain before this run.
	CurrentCycle    string `json:"current_cycle,omitempty"`
	CurrentVerified bool   `json:"current_verified"`
	Cycles          int    `json:"cycles"`
	Streams         int    `json:"streams"`
	// EstimatedBytes is zfs send's estimate where this ZFS gives one.
	EstimatedBytes int64 `json:"estimated_bytes,omitempty"`
}

// ArchiveStreamRequest is one stream to archive (from PlanArchive).
type ArchiveStreamRequest struct {
	Dataset zfsname.Dataset      `json:"dataset"`
	Kind    archivetypes.Kind    `json:"kind"`
	From    archivetypes.SnapRef `json:"from,omitzero"`
	To      archivetypes.SnapRef `json:"to"`
	Cycle   string               `json:"cycle"`
	Raw     bool                 `json:"raw,omitempty"`
	Class   objstore.Class       `json:"class"`
}

// ArchiveStreamReport says what ArchiveStream stored.
type ArchiveStreamReport struct {
	Stream StreamInfo `json:"stream"`
	// AlreadyArchived: an earlier attempt uploaded and recorded it.
	AlreadyArchived bool    `json:"already_archived,omitempty"`
	Attempt         int32   `json:"attempt"`
	RestartedAfter  int64   `json:"restarted_after,omitempty"` // bytes the previous attempt had sent
	Seconds         float64 `json:"seconds"`
}

// CycleCheckRequest verifies a cycle before older cycles may be deleted.
type CycleCheckRequest struct {
	Dataset zfsname.Dataset `json:"dataset"`
	Cycle   string          `json:"cycle"`
	// SanityMinPercent: the cycle's full must be at least this % of the
	// previous cycle's full (0: no check).
	SanityMinPercent float64 `json:"sanity_min_percent"`
	// AcceptSmaller waives the sanity check (an operator confirmed the
	// dataset really shrank).
	AcceptSmaller bool `json:"accept_smaller,omitempty"`
}

// CycleCheck is CheckArchiveCycle's verdict.
type CycleCheck struct {
	Cycle    string `json:"cycle"`
	Verified bool   `json:"verified"`
	// Already: verified by an earlier run.
	Already       bool     `json:"already,omitempty"`
	Problems      []string `json:"problems,omitempty"` // objects missing or not matching the manifest (HEAD)
	Sanity        string   `json:"sanity,omitempty"`   // the sanity check's failure
	FullBytes     int64    `json:"full_bytes"`
	PrevFullBytes int64    `json:"prev_full_bytes,omitempty"`
}

// CycleSummary describes a cycle in deletion plans.
type CycleSummary struct {
	ID          string         `json:"id"`
	Started     time.Time      `json:"started"`
	Class       objstore.Class `json:"class"`
	Streams     int            `json:"streams"`
	StoredBytes int64          `json:"stored_bytes"`
	ParityBytes int64          `json:"parity_bytes,omitempty"` // stored on top, in parity objects
	MonthlyUSD  float64        `json:"monthly_usd"`            // storage per month in its class (list price)
	// DeletableAt is when every stream has been stored for its class's
	// minimum duration.
	DeletableAt time.Time `json:"deletable_at"`
	Reason      string    `json:"reason,omitempty"` // why it is kept
}

// DeletionPlanRequest asks which old cycles rotation may delete now.
type DeletionPlanRequest struct {
	Dataset zfsname.Dataset `json:"dataset"`
	Now     time.Time       `json:"now"`
	// Force waives the class's minimum storage duration (early deletion is
	// billed as if stored that long).
	Force bool `json:"force,omitempty"`
	// Deleting more than MaxDeleteCycles cycles or MaxDeleteBytes stored
	// bytes needs approval; -1 switches a limit off.
	MaxDeleteCycles int   `json:"max_delete_cycles"`
	MaxDeleteBytes  int64 `json:"max_delete_bytes"`
}

// DeletionPlan lists the cycles to delete and those kept, with reasons.
type DeletionPlan struct {
	ID            string         `json:"id"`
	Dataset       string         `json:"dataset"`
	Delete        []CycleSummary `json:"delete,omitempty"`
	Kept          []CycleSummary `json:"kept,omitempty"`
	StoredBytes   int64          `json:"stored_bytes"`
	NeedsApproval bool           `json:"needs_approval"`
	Verdict       string         `json:"verdict"`
}

// DeleteCyclesRequest deletes the cycles of an (approved) plan.
type DeleteCyclesRequest struct {
	Dataset zfsname.Dataset `json:"dataset"`
	PlanID  string          `json:"plan_id"`
	Cycles  []string        `json:"cycles"`
	Now     time.Time       `json:"now"`
	Force   bool            `json:"force,omitempty"`
}

// DeletionReport says what was deleted.
type DeletionReport struct {
	Deleted []string `json:"deleted,omitempty"`
	Objects int      `json:"objects"`
	Bytes   int64    `json:"bytes"`
	Skipped []string `json:"skipped,omitempty"` // "cycle: reason"
}

// ManifestSummary is a dataset's archive at a glance (zcloud archive status).
type ManifestSummary struct {
	Dataset      string         `json:"dataset"`
	Found        bool           `json:"found"`
	Generation   int64          `json:"generation"`
	Updated      time.Time      `json:"updated"`
	FromPrevious bool           `json:"from_previous,omitempty"`
	Cycles       []CycleSummary `json:"cycles,omitempty"`
	Streams      []StreamInfo   `json:"streams,omitempty"`
	Verified     []string       `json:"verified,omitempty"` // verified cycle ids
}

// StreamInfo is an archived stream as workflows see it: everything but the
// part list, which stays in the manifest in the store (payloads stay small
// whatever the stream's size).
type StreamInfo struct {
	ID         string               `json:"id"`
	Cycle      string               `json:"cycle"`
	Kind       archivetypes.Kind    `json:"kind"`
	From       archivetypes.SnapRef `json:"from,omitzero"`
	To         archivetypes.SnapRef `json:"to"`
	Raw        bool                 `json:"raw,omitempty"`
	Key        string               `json:"key"`
	Class      objstore.Class       `json:"class"`
	PlainSize  int64                `json:"plain_size"`
	StoredSize int64                `json:"stored_size"`
	Parts      int                  `json:"parts"`
	// Parity is "k+m" for a stream stored as part objects with
	// Reed-Solomon parity; ParityBytes is what its parity objects store.
	Parity      string    `json:"parity,omitempty"`
	ParityBytes int64     `json:"parity_bytes,omitempty"`
	Uploaded    time.Time `json:"uploaded"`
}
