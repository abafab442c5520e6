package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/zfsname"
)

// StagingName is the registered name of the Staging workflow.
const StagingName = "Staging"

// Phases of Staging (besides the shared ones).
const (
	PhaseStaging           = "staging files"
	PhaseSnapshotStaging   = "snapshotting the staging dataset"
	PhaseHoldingStagedBase = "holding the staged snapshot"
)

// StagingWorkflowID is the staging run of a source dataset; one at a time.
func StagingWorkflowID(source string) string { return "staging/" + source }

// StagingScheduleID names a source's staging Schedule.
func StagingScheduleID(source string) string { return "staging-schedule/" + source }

// StagingInput is one configured staging job.
type StagingInput struct {
	Source  string `json:"source"`
	Dataset string `json:"dataset"` // the staging dataset
	// HeartbeatTimeout of the staging activity (default 2m); tests shorten
	// it so that a killed worker's attempt is retried sooner.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// StagingStatus answers Staging's status query and is its result.
type StagingStatus struct {
	Phase  string                  `json:"phase"`
	Source string                  `json:"source"`
	Plan   *contract.StagingPlan   `json:"plan,omitempty"`
	Report *contract.StagingReport `json:"report,omitempty"`
	Error  string                  `json:"error,omitempty"`
}

// Staging brings a source's staging copy up to its newest snapshot: every
// file encrypted the first time, then only what `zfs diff` lists; then the
// staging dataset is snapshotted (same snapshot name) and the staged
// source snapshot is held (tag zcloud-staging) as the next diff's base.
// A crash anywhere resumes: the staging activity is idempotent and keeps a
// journal in the staging copy.
func Staging(ctx workflow.Context, in StagingInput) (StagingStatus, error) {
	if err := in.fields.refuse(StagingName, floor{"heartbeat_timeout", in.HeartbeatTimeout}); err != nil {
		return StagingStatus{}, err
	}
	st := StagingStatus{Phase: PhasePlanning, Source: in.Source}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (StagingStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	bad := func(err error) error {
		return failStep(&st.Phase, &st.Error, "input", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
	}
	src, err := zfsname.ParseDataset(in.Source)
	if err != nil {
		return st, bad(err)
	}
	dst, err := zfsname.ParseDataset(in.Dataset)
	if err != nil {
		return st, bad(err)
	}
	quick := workflow.WithActivityOptions(ctx, quickActivity)
	var plan contract.StagingPlan
	if err := workflow.ExecuteActivity(quick, contract.PlanStaging, contract.StagingPlanRequest{Source: src, Dataset: dst}).Get(ctx, &plan); err != nil {
		return st, failStep(&st.Phase, &st.Error, "plan", err)
	}
	st.Plan = &plan
	if plan.Action != contract.StagingSkip {
		req := contract.StageRequest{Source: src, Dataset: dst, Action: plan.Action, From: plan.From, To: plan.To}
		if err := stage(ctx, in, &st, req); err != nil {
			return st, err
		}
	}
	// Also when nothing was staged: a run that died between staging and
	// these two idempotent steps finishes them now.
	st.Phase = PhaseSnapshotStaging
	snap, err := dst.Snapshot(plan.To)
	if err != nil {
		return st, bad(err)
	}
	if err := workflow.ExecuteActivity(quick, contract.SnapshotStaging, contract.StagingSnapshotRequest{Snapshot: snap}).Get(ctx, nil); err != nil {
		return st, failStep(&st.Phase, &st.Error, "snapshot staging", err)
	}

	st.Phase = PhaseHoldingStagedBase
	base, err := src.Snapshot(plan.To)
	if err != nil {
		return st, bad(err)
	}
	if err := workflow.ExecuteActivity(quick, contract.HoldBase, contract.HoldRequest{Snapshot: base, Tag: contract.StagingHoldTag}).Get(ctx, nil); err != nil {
		return st, failStep(&st.Phase, &st.Error, "hold", err)
	}
	st.Phase = PhaseDone
	return st, nil
}

// stage runs the staging activity: long, heartbeating, retried (a retry
// resumes from the staging copy's journal).
func stage(ctx workflow.Context, in StagingInput, st *StagingStatus, req contract.StageRequest) error {
	st.Phase = PhaseStaging
	long := streamActivity(ctx, in.HeartbeatTimeout, 2*time.Minute, 10)
	var rep contract.StagingReport
	if err := workflow.ExecuteActivity(long, contract.StageSnapshot, req).Get(ctx, &rep); err != nil {
		return failStep(&st.Phase, &st.Error, "stage", err)
	}
	st.Report = &rep
	return nil
}
