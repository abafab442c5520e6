package contract

import "zcloud/zfsname"

// StagingHoldTag holds the last staged snapshot on the source: the next
// staging diff's base.
const StagingHoldTag = "zcloud-staging"

// StagingGatePoint is the test gate the staging activity passes after each
// staged file (count: files staged by this attempt).
const StagingGatePoint = "staging-file"

// What a staging run does.
const (
	StagingFull        = "full"
	StagingIncremental = "incremental"
	StagingSkip        = "skip"
)

// StagingPlanRequest names a configured staging job.
type StagingPlanRequest struct {
	Source  zfsname.Dataset `json:"source"`
	Dataset zfsname.Dataset `json:"dataset"` // the staging dataset
}

// StagingPlan is the next staging run.
type StagingPlan struct {
	Action string `json:"action"`         // StagingFull, StagingIncremental or StagingSkip
	From   string `json:"from,omitempty"` // incremental base (what the copy holds)
	To     string `json:"to,omitempty"`   // the source's newest snapshot
	Note   string `json:"note,omitempty"`
}

// StageRequest is one staging run's work.
type StageRequest struct {
	Source  zfsname.Dataset `json:"source"`
	Dataset zfsname.Dataset `json:"dataset"`
	Action  string          `json:"action"`
	From    string          `json:"from,omitempty"`
	To      string          `json:"to"`
}

// StagingSnapshotRequest snapshots the staging dataset after a run.
type StagingSnapshotRequest struct {
	Snapshot zfsname.Snapshot `json:"snapshot"`
}

// StagingProblem is one entry a run could not stage, and why.
type StagingProblem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// StagingReport says what a staging run did.
type StagingReport struct {
	Snapshot string           `json:"snapshot"`
	Already  bool             `json:"already,omitempty"` // the snapshot was staged before
	Files    int              `json:"files"`             // regular files encrypted
	Symlinks int              `json:"symlinks"`
	Dirs     int              `json:"dirs"`    // directories created
	Removed  int              `json:"removed"` // staged entries removed
	Moved    int              `json:"moved"`   // staged entries renamed (incremental)
	Bytes    int64            `json:"bytes"`   // source bytes encrypted
	Skipped  []StagingProblem `json:"skipped,omitempty"`
	Failed   []StagingProblem `json:"failed,omitempty"`
}
