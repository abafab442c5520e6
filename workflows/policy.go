package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/retention"
	"zcloud/searchattr"
	"zcloud/zfsname"
)

// Registered names of the snapshot policy workflows and their update.
const (
	// SnapshotPolicyName runs once per tick of a policy's Schedule.
	SnapshotPolicyName = "SnapshotPolicy"
	// PrunePolicyName prunes one dataset; at most one runs per dataset.
	PrunePolicyName = "PrunePolicy"
	// PolicyPlanName only computes a plan (zcloud policy plan).
	PolicyPlanName = "PolicyPlan"
	// ApproveUpdate approves or rejects a plan waiting in PrunePolicy.
	ApproveUpdate = "approve-prune"
)

// DefaultApprovalTimeout applies when PolicyInput.ApprovalTimeout is zero.
const DefaultApprovalTimeout = 24 * time.Hour

// ScheduleIDPrefix starts the ID of every policy Schedule.
const ScheduleIDPrefix = "policy/"

// ScheduleID is the Schedule of dataset's policy.
func ScheduleID(dataset string) string { return ScheduleIDPrefix + dataset }

// PruneWorkflowID is the one prune of dataset that may run at a time; it is
// where approvals go.
func PruneWorkflowID(dataset string) string { return "policy-prune/" + dataset }

// PolicyInput is one dataset's policy, as a Schedule's action carries it.
type PolicyInput struct {
	Dataset        string                 `json:"dataset"`
	Policy         retention.Policy       `json:"policy"`
	IncludeForeign bool                   `json:"include_foreign,omitempty"`
	Protected      []retention.Protection `json:"protected,omitempty"`
	// A prune destroying more than MaxDestroyCount snapshots or more than
	// MaxDestroyPercent of zcloud's waits for approval; -1 switches a limit off.
	MaxDestroyCount   int     `json:"max_destroy_count"`
	MaxDestroyPercent float64 `json:"max_destroy_percent"`
	// ApprovalTimeout: after it an unapproved prune destroys nothing (default 24h).
	ApprovalTimeout time.Duration `json:"approval_timeout,omitempty"`
	// StagingDataset, when set, is the dataset's staging copy (config
	// staging: after_snapshot): each snapshot this tick takes starts the
	// Staging workflow of the dataset into it.
	StagingDataset string `json:"staging_dataset,omitempty"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// validate checks the input in workflow code (pure) so a bad schedule
// fails its run with a clear, non-retryable error.
func (in PolicyInput) validate() (zfsname.Dataset, error) {
	ds, err := zfsname.ParseDataset(in.Dataset)
	if err != nil {
		return ds, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil)
	}
	if err := in.Policy.Validate(); err != nil {
		return ds, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeConfig, nil)
	}
	return ds, nil
}

func (in PolicyInput) planRequest(ds zfsname.Dataset, now time.Time) contract.PlanRequest {
	return contract.PlanRequest{Dataset: ds, Policy: in.Policy, Now: now, IncludeForeign: in.IncludeForeign,
		Protected: in.Protected, MaxDestroyCount: in.MaxDestroyCount, MaxDestroyPercent: in.MaxDestroyPercent}
}

// PolicyStatus answers SnapshotPolicy's status query and is its result.
type PolicyStatus struct {
	Phase    string           `json:"phase"`
	Dataset  string           `json:"dataset"`
	Due      []retention.Kind `json:"due,omitempty"`
	Snapshot string           `json:"snapshot,omitempty"` // taken by this run
	// PruneWorkflow is the prune this run started; PruneNote says why none was.
	PruneWorkflow string `json:"prune_workflow,omitempty"`
	PruneRunID    string `json:"prune_run_id,omitempty"`
	PruneNote     string `json:"prune_note,omitempty"`
	// StagingWorkflow is the staging run this tick started (after_snapshot);
	// StagingNote says why none was.
	StagingWorkflow string `json:"staging_workflow,omitempty"`
	StagingRunID    string `json:"staging_run_id,omitempty"`
	StagingNote     string `json:"staging_note,omitempty"`
	Error           string `json:"error,omitempty"`
}

// SnapshotPolicy is one tick of a policy: take a snapshot if one is due
// (named from the workflow's start time, so a replay names it the same),
// then start the dataset's prune as its own workflow and return without
// waiting for it. A prune waiting for approval therefore never holds up
// the next tick's snapshot, and while it waits, later ticks start no
// second prune: the fixed prune workflow ID lets only one run.
func SnapshotPolicy(ctx workflow.Context, in PolicyInput) (PolicyStatus, error) {
	if err := in.fields.refuse(SnapshotPolicyName); err != nil {
		return PolicyStatus{}, err
	}
	st := PolicyStatus{Phase: "starting", Dataset: in.Dataset}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (PolicyStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	ds, err := in.validate()
	if err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "input", err)
	}
	now := workflow.Now(ctx)
	quick := workflow.WithActivityOptions(ctx, quickActivity)

	st.Phase = "checking due"
	var due contract.DueReport
	if err := workflow.ExecuteActivity(quick, contract.SnapshotDue, contract.DueRequest{Dataset: ds, Policy: in.Policy, Now: now}).Get(ctx, &due); err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "check due", err)
	}
	st.Due = due.Kinds
	if due.Due {
		st.Phase = "snapshot"
		snap, err := ds.Snapshot(retention.SnapshotName(in.Policy.WithDefaults().Prefix, now))
		if err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "snapshot", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
		}
		req := contract.SnapshotRequest{Snapshot: snap, Recursive: in.Policy.Recursive}
		if err := workflow.ExecuteActivity(quick, contract.TakeSnapshot, req).Get(ctx, nil); err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "snapshot", err)
		}
		st.Snapshot = snap.String()
		// Only ticks that took a snapshot and have staging do this (old
		// histories have neither); the version marks the new command.
		if in.StagingDataset != "" && workflow.GetVersion(ctx, stagingAfterSnapshot, workflow.DefaultVersion, 1) == 1 {
			st.Phase = "starting staging"
			startStaging(ctx, &st, StagingInput{Source: ds.String(), Dataset: in.StagingDataset})
		}
	}

	st.Phase = "starting prune"
	cctx := workflow.WithChildOptions(ctx, childJob(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            PruneWorkflowID(ds.String()),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, searchattr.Job{Kind: searchattr.KindPrune, Datasets: []string{ds.String()}}))
	var child workflow.Execution
	err = workflow.ExecuteChildWorkflow(cctx, PrunePolicyName, in).GetChildWorkflowExecution().Get(ctx, &child)
	switch {
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		st.PruneNote = "previous prune " + PruneWorkflowID(ds.String()) + " is still running (waiting for approval?): no new prune started"
	case err != nil:
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "start prune", err)
	default:
		st.PruneWorkflow, st.PruneRunID = child.ID, child.RunID
	}
	st.Phase = "done"
	return st, nil
}

// stagingAfterSnapshot: SnapshotPolicy starts the dataset's Staging
// workflow after the snapshot it took.
const stagingAfterSnapshot = "staging-after-snapshot"

// startStaging starts the Staging workflow of in.Source as an abandoned
// child (it outlives the tick) and notes what happened. One that is still
// running is left alone: it or the next tick stages the new snapshot. A
// failure to start is noted, not fatal: the snapshot is taken.
func startStaging(ctx workflow.Context, st *PolicyStatus, in StagingInput) {
	cctx := workflow.WithChildOptions(ctx, childJob(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            StagingWorkflowID(in.Source),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, searchattr.Job{Kind: searchattr.KindStaging, Datasets: []string{in.Source}}))
	var child workflow.Execution
	err := workflow.ExecuteChildWorkflow(cctx, StagingName, in).GetChildWorkflowExecution().Get(ctx, &child)
	switch {
	case temporal.IsWorkflowExecutionAlreadyStartedError(err):
		st.StagingNote = "staging " + StagingWorkflowID(in.Source) + " is still running: the next tick stages this snapshot if it does not"
	case err != nil:
		st.StagingNote = "staging not started: " + err.Error()
	default:
		st.StagingWorkflow, st.StagingRunID = child.ID, child.RunID
	}
}

// Phases of PrunePolicy.
const (
	PhasePlanning         = "planning"
	PhaseAwaitingApproval = "awaiting approval"
	PhaseDestroying       = "destroying"
	PhaseNothingToDo      = "nothing to destroy"
	PhaseRejected         = "rejected"
	PhaseTimedOut         = "approval timed out"
)

// PruneStatus answers PrunePolicy's status query and is its result.
type PruneStatus struct {
	Phase   string               `json:"phase"`
	Dataset string               `json:"dataset"`
	Report  *contract.PlanReport `json:"report,omitempty"`
	// Deadline is when an unanswered approval request gives up.
	Deadline time.Time               `json:"deadline,omitempty"`
	Decision *Approval               `json:"decision,omitempty"`
	Result   *contract.DestroyReport `json:"result,omitempty"`
	Error    string                  `json:"error,omitempty"`
}

// PrunePolicy plans a prune and carries it out. A plan over the policy's
// thresholds waits (durably, up to ApprovalTimeout) for an approve-prune
// update naming its plan ID; a rejection or the timeout destroys nothing.
func PrunePolicy(ctx workflow.Context, in PolicyInput) (PruneStatus, error) {
	if err := in.fields.refuse(PrunePolicyName); err != nil {
		return PruneStatus{}, err
	}
	st := PruneStatus{Phase: PhasePlanning, Dataset: in.Dataset}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (PruneStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	gate, err := newApprovalGate(ctx, ApproveUpdate,
		"approve or reject the prune plan waiting for approval: {approve, by, plan_id}",
		"plan", in.Dataset, "zcloud policy status", &st.Phase,
		func(ap Approval) string {
			st.Decision = &ap
			if ap.Approve {
				return fmt.Sprintf("approved plan %s: destroying %d snapshots", ap.PlanID, len(st.Report.Destroy))
			}
			return fmt.Sprintf("rejected plan %s: nothing will be destroyed", ap.PlanID)
		})
	if err != nil {
		return st, err
	}
	ds, err := in.validate()
	if err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "input", err)
	}
	quick := workflow.WithActivityOptions(ctx, quickActivity)
	var rep contract.PlanReport
	if err := workflow.ExecuteActivity(quick, contract.PlanPrune, in.planRequest(ds, workflow.Now(ctx))).Get(ctx, &rep); err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "plan", err)
	}
	st.Report = &rep
	if len(rep.Destroy) == 0 {
		st.Phase = PhaseNothingToDo
		return st, nil
	}
	if rep.NeedsApproval {
		workflow.GetLogger(ctx).Info("prune plan over the limits", "dataset", in.Dataset, "plan", rep.ID, "verdict", rep.Verdict)
		ok, err := gate.wait(ctx, rep.ID, in.ApprovalTimeout, &st.Deadline)
		if err != nil {
			return st, failStepVersioned(ctx, &st.Phase, &st.Error, "await approval", err)
		}
		if !ok {
			return st, nil
		}
	}

	st.Phase = PhaseDestroying
	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
	})
	req := contract.DestroyRequest{Dataset: ds, Recursive: in.Policy.Recursive, PlanID: rep.ID, Snapshots: rep.Destroy}
	var res contract.DestroyReport
	if err := workflow.ExecuteActivity(long, contract.DestroySnapshots, req).Get(ctx, &res); err != nil {
		return st, failStepVersioned(ctx, &st.Phase, &st.Error, "destroy", err)
	}
	st.Result = &res
	st.Phase = PhaseDone
	return st, nil
}

// PolicyPlan computes the plan a prune would carry out now, destroying
// nothing (zcloud policy plan). It runs on the worker, next to the pool.
func PolicyPlan(ctx workflow.Context, in PolicyInput) (contract.PlanReport, error) {
	if err := in.fields.refuse(PolicyPlanName); err != nil {
		return contract.PlanReport{}, err
	}
	ds, err := in.validate()
	if err != nil {
		return contract.PlanReport{}, err
	}
	var rep contract.PlanReport
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, quickActivity), contract.PlanPrune, in.planRequest(ds, workflow.Now(ctx))).Get(ctx, &rep)
	if err != nil {
		msg, typ := rootCause(err)
		return rep, temporal.NewNonRetryableApplicationError("plan: "+msg, typ, nil)
	}
	return rep, nil
}

// streamActivity is how a workflow runs a long byte-streaming activity
// (archive upload, restore receive, verify, staging): up to 72 h,
// heartbeating within hb (def when the input leaves it 0), retried with
// backoff up to tries times; a retry resumes from its heartbeat details.
func streamActivity(ctx workflow.Context, hb, def time.Duration, tries int32) workflow.Context {
	if hb == 0 {
		hb = def
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 72 * time.Hour,
		HeartbeatTimeout:    hb,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, MaximumAttempts: tries},
	})
}

var quickActivity = workflow.ActivityOptions{
	StartToCloseTimeout: 5 * time.Minute,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
}
