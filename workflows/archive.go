package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/archive/archivetypes"
	"zcloud/contract"
	"zcloud/searchattr"
	"zcloud/zfsname"
)

// Registered names of the archive workflows and the deletion approval.
const (
	ArchiveName = "Archive"
	// ApproveDeletionUpdate approves or rejects old cycles' deletion.
	ApproveDeletionUpdate = "approve-archive-deletion"
)

// Phases of Archive (besides the shared PhaseFailed etc.).
const (
	PhaseUploading        = "uploading"
	PhaseHolding          = "holding base"
	PhaseVerifyingCycle   = "verifying cycle"
	PhasePlanningDeletion = "planning deletion"
	PhaseDeleting         = "deleting old cycles"
)

// ArchiveWorkflowID is the archive run of dataset started by the CLI; one
// runs at a time per dataset (the manifest's generation guards the rest).
func ArchiveWorkflowID(dataset string) string { return "archive/" + dataset }

// ArchiveScheduleID and VerifyScheduleID name a dataset's Schedules. They
// do not start with ScheduleIDPrefix: policy apply leaves them alone.
func ArchiveScheduleID(dataset string) string { return "archive-schedule/" + dataset }
func VerifyScheduleID(dataset string) string  { return "archive-verify-schedule/" + dataset }

// ArchiveScheduleIDPrefix starts every archive and drill Schedule ID.
const ArchiveScheduleIDPrefix = "archive-"

// ArchiveInput is one dataset's archive settings (from the config).
type ArchiveInput struct {
	Dataset string        `json:"dataset"`
	Cycle   time.Duration `json:"cycle"` // a new full every Cycle
	// SanityMinPercent: a new full below this % of the previous full keeps
	// the previous cycle (0: no check). AcceptSmaller waives it once.
	SanityMinPercent float64 `json:"sanity_min_percent"`
	AcceptSmaller    bool    `json:"accept_smaller,omitempty"`
	Raw              bool    `json:"raw,omitempty"`
	Class            string  `json:"class"`
	// Force deletes old cycles before their class's minimum storage
	// duration (paying the early-deletion charge).
	Force bool `json:"force,omitempty"`
	// Deleting more than MaxDeleteCycles cycles or MaxDeleteBytes stored
	// bytes waits for approve-archive-deletion; -1 switches a limit off.
	MaxDeleteCycles int           `json:"max_delete_cycles"`
	MaxDeleteBytes  int64         `json:"max_delete_bytes"`
	ApprovalTimeout time.Duration `json:"approval_timeout,omitempty"`
	// HeartbeatTimeout of the upload (default 12s); tests shorten it.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// ArchiveStatus answers Archive's status query and is its result.
type ArchiveStatus struct {
	Phase    string                        `json:"phase"`
	Dataset  string                        `json:"dataset"`
	Plan     *contract.ArchivePlan         `json:"plan,omitempty"`
	Stream   *contract.ArchiveStreamReport `json:"stream,omitempty"`
	Check    *contract.CycleCheck          `json:"check,omitempty"`
	Deletion *contract.DeletionPlan        `json:"deletion,omitempty"`
	Deadline time.Time                     `json:"deadline,omitzero"` // of a waiting approval
	Decision *Approval                     `json:"decision,omitempty"`
	Deleted  *contract.DeletionReport      `json:"deleted,omitempty"`
	Error    string                        `json:"error,omitempty"`
}

// Archive archives one dataset: a full stream when no chain exists or the
// cycle is due (a new cycle), else an incremental from the last archived
// snapshot, nothing when nothing changed. The chain's base is held on the
// source. A cycle is then verified (HEAD checksums) and sanity-checked
// against the previous full; only a verified cycle lets rotation delete
// older ones, never before their class's minimum storage duration unless
// Force, and a deletion over the thresholds waits for an approval.
func Archive(ctx workflow.Context, in ArchiveInput) (ArchiveStatus, error) {
	if err := in.fields.refuse(ArchiveName, floor{"heartbeat_timeout", in.HeartbeatTimeout}); err != nil {
		return ArchiveStatus{}, err
	}
	st := ArchiveStatus{Phase: PhasePlanning, Dataset: in.Dataset}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (ArchiveStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	gate, err := newApprovalGate(ctx, ApproveDeletionUpdate,
		"approve or reject the deletion of old archive cycles: {approve, by, plan_id}",
		"deletion plan", in.Dataset, "zcloud archive status", &st.Phase,
		func(ap Approval) string {
			st.Decision = &ap
			if ap.Approve {
				return fmt.Sprintf("approved deletion plan %s: deleting %d cycles", ap.PlanID, len(st.Deletion.Delete))
			}
			return fmt.Sprintf("rejected deletion plan %s: nothing will be deleted", ap.PlanID)
		})
	if err != nil {
		return st, err
	}
	ds, err := zfsname.ParseDataset(in.Dataset)
	if err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "input", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
	}
	if in.Cycle <= 0 {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "input", temporal.NewNonRetryableApplicationError("cycle period must be positive", contract.ErrTypeConfig, nil))
	}
	now := workflow.Now(ctx)
	quick := workflow.WithActivityOptions(ctx, quickActivity)

	var plan contract.ArchivePlan
	if err := workflow.ExecuteActivity(quick, contract.PlanArchive, contract.ArchivePlanRequest{Dataset: ds, Now: now, Period: in.Cycle, Limits: &contract.ArchiveLimits{
		SanityMinPercent: in.SanityMinPercent, AcceptSmaller: in.AcceptSmaller, Force: in.Force,
		MaxDeleteCycles: in.MaxDeleteCycles, MaxDeleteBytes: in.MaxDeleteBytes}}).Get(ctx, &plan); err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "plan", err)
	}
	st.Plan = &plan
	cycle, verified := plan.CurrentCycle, plan.CurrentVerified

	if plan.Action != contract.ArchiveSkip {
		st.Phase = PhaseUploading
		long := streamActivity(ctx, in.HeartbeatTimeout, streamHeartbeatTimeout, 20)
		req := contract.ArchiveStreamRequest{Dataset: ds, Kind: plan.Kind, From: plan.From, To: plan.To, Cycle: plan.Cycle,
			Raw: in.Raw, Class: contract.StorageClass(in.Class)}
		var rep contract.ArchiveStreamReport
		if err := workflow.ExecuteActivity(long, contract.ArchiveStream, req).Get(ctx, &rep); err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "upload", err)
		}
		st.Stream = &rep

		st.Phase = PhaseHolding
		snap, err := ds.Snapshot(plan.To.Name)
		if err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "hold", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
		}
		if err := workflow.ExecuteActivity(quick, contract.HoldBase, contract.HoldRequest{Snapshot: snap, Tag: contract.ArchiveHoldTag}).Get(ctx, nil); err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "hold", err)
		}
		if plan.Kind == archivetypes.Full {
			cycle, verified = plan.Cycle, false
		}
	}
	if cycle == "" {
		st.Phase = PhaseDone
		return st, nil
	}
	if !verified {
		st.Phase = PhaseVerifyingCycle
		req := contract.CycleCheckRequest{Dataset: ds, Cycle: cycle, SanityMinPercent: in.SanityMinPercent, AcceptSmaller: in.AcceptSmaller}
		var chk contract.CycleCheck
		if err := workflow.ExecuteActivity(quick, contract.CheckArchiveCycle, req).Get(ctx, &chk); err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "verify cycle", err)
		}
		st.Check = &chk
		switch {
		case len(chk.Problems) > 0:
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "verify cycle", temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("cycle %s does not match its manifest; older cycles are kept: %s", cycle, strings.Join(chk.Problems, "; ")), contract.ErrTypeCorrupt, nil))
		case chk.Sanity != "":
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "rotation", temporal.NewNonRetryableApplicationError(
				chk.Sanity+"; the previous cycle is kept untouched (if the dataset really shrank: zcloud archive run --accept-smaller, with archive.allow_accept_smaller: true in the worker's config)", "SanityCheckFailed", nil))
		}
	}

	st.Phase = PhasePlanningDeletion
	dreq := contract.DeletionPlanRequest{Dataset: ds, Now: now, Force: in.Force, MaxDeleteCycles: in.MaxDeleteCycles, MaxDeleteBytes: in.MaxDeleteBytes}
	var dp contract.DeletionPlan
	if err := workflow.ExecuteActivity(quick, contract.PlanArchiveDeletion, dreq).Get(ctx, &dp); err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "plan deletion", err)
	}
	st.Deletion = &dp
	if len(dp.Delete) == 0 {
		st.Phase = PhaseDone
		return st, nil
	}
	if dp.NeedsApproval {
		workflow.GetLogger(ctx).Info("archive deletion over the limits", "dataset", in.Dataset, "plan", dp.ID, "verdict", dp.Verdict)
		ok, err := gate.wait(ctx, dp.ID, in.ApprovalTimeout, &st.Deadline)
		if err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "await approval", err)
		}
		if !ok {
			return st, nil
		}
	}
	st.Phase = PhaseDeleting
	del := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 10},
	})
	var ids []string
	for _, c := range dp.Delete {
		ids = append(ids, c.ID)
	}
	var rep contract.DeletionReport
	req := contract.DeleteCyclesRequest{Dataset: ds, PlanID: dp.ID, Cycles: ids, Now: now, Force: in.Force}
	if err := workflow.ExecuteActivity(del, contract.DeleteArchiveCycles, req).Get(ctx, &rep); err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "delete", err)
	}
	st.Deleted = &rep
	st.Phase = PhaseDone
	return st, nil
}

// ArchiveDescribeName only reads a dataset's manifest (zcloud archive status).
const ArchiveDescribeName = "ArchiveDescribe"

// ArchiveDescribe summarizes the manifest in the store, read on the worker
// with the host identity (the CLI host has no keys).
func ArchiveDescribe(ctx workflow.Context, dataset string) (contract.ManifestSummary, error) {
	ds, err := zfsname.ParseDataset(dataset)
	if err != nil {
		return contract.ManifestSummary{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil)
	}
	var out contract.ManifestSummary
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, quickActivity), contract.DescribeArchive, contract.VerifyPlanRequest{Dataset: ds}).Get(ctx, &out)
	if err != nil {
		msg, typ := rootCause(err)
		return out, temporal.NewNonRetryableApplicationError("describe: "+msg, typ, nil)
	}
	return out, nil
}

// ArchiveTickName is what an archive Schedule starts each tick.
const ArchiveTickName = "ArchiveTick"

// ArchiveTick starts the dataset's Archive as its own workflow with the
// fixed ID archive/<dataset> and returns without waiting: approvals and
// 'zcloud archive status' always find the run there, and a run still going
// (waiting for an approval) makes the tick start nothing.
func ArchiveTick(ctx workflow.Context, in ArchiveInput) (string, error) {
	if err := in.fields.refuse(ArchiveTickName, floor{"heartbeat_timeout", in.HeartbeatTimeout}); err != nil {
		return "", err
	}
	cctx := workflow.WithChildOptions(ctx, childJob(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            ArchiveWorkflowID(in.Dataset),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, ArchiveJob(in.Dataset)))
	var child workflow.Execution
	err := workflow.ExecuteChildWorkflow(cctx, ArchiveName, in).GetChildWorkflowExecution().Get(ctx, &child)
	switch {
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		return "previous archive run " + ArchiveWorkflowID(in.Dataset) + " is still running: none started", nil
	case err != nil:
		msg, typ := rootCause(err)
		return "", temporal.NewNonRetryableApplicationError("start archive: "+msg, typ, nil)
	}
	return "started " + child.ID + " run " + child.RunID, nil
}

// CatalogName lists every configured dataset's copies (zcloud status).
const CatalogName = "Catalog"

// Catalog reads, on the worker, the newest snapshot of every configured
// dataset on the source, its replicas and the archive: the CLI host has
// neither the pools nor the keys.
func Catalog(ctx workflow.Context) ([]contract.CatalogDataset, error) {
	var out []contract.CatalogDataset
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, quickActivity), contract.Catalog).Get(ctx, &out)
	if err != nil {
		msg, typ := rootCause(err)
		return out, temporal.NewNonRetryableApplicationError("catalog: "+msg, typ, nil)
	}
	return out, nil
}

// ArchiveJob is the search attributes of an archive run of dataset (the
// CLI's start, the schedule's tick and the run the tick starts).
func ArchiveJob(dataset string) searchattr.Job {
	return searchattr.Job{Kind: searchattr.KindArchive, Datasets: []string{dataset}, Target: "archive"}
}
