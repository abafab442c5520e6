package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"zcloud/activities"
	"zcloud/contract"
	"zcloud/retention"
	"zcloud/zfsname"
)

var t0 = time.Date(2026, 3, 29, 0, 30, 0, 0, time.UTC) // a DST change day in Europe

func policyInput() PolicyInput {
	return PolicyInput{Dataset: "tank/data", Policy: retention.Policy{Hourly: 2, Daily: 3}, MaxDestroyCount: 2, MaxDestroyPercent: -1}
}

// planReport is a plan destroying n snapshots.
func planReport(n int, needsApproval bool) contract.PlanReport {
	rep := contract.PlanReport{Dataset: "tank/data", NeedsApproval: needsApproval, Verdict: "test verdict"}
	for i := 0; i < n; i++ {
		name := retention.SnapshotName("zcloud", t0.Add(-time.Duration(i+10)*time.Hour))
		rep.Destroy = append(rep.Destroy, contract.PlannedDestroy{Name: name, GUID: uint64(1000 + i)})
		rep.Plan.Decisions = append(rep.Plan.Decisions, retention.Decision{
			Snapshot: retention.Snapshot{Name: name}, Action: retention.Destroy, Reasons: []string{retention.ReasonNoBucket}, Managed: true})
	}
	rep.ID = activities.PlanID(rep.Dataset, rep.Destroy)
	return rep
}

// destroyRecorder mocks DestroySnapshots and remembers each call.
type destroyRecorder struct {
	mu       sync.Mutex
	calls    []contract.DestroyRequest
	at       []time.Time
	notified []contract.NotifyEvent // notifications sent
}

func (d *destroyRecorder) mock(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(acts.DestroySnapshots, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.DestroyRequest) (contract.DestroyReport, error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.calls = append(d.calls, req)
			d.at = append(d.at, env.Now())
			var names []string
			for _, s := range req.Snapshots {
				names = append(names, s.Name)
			}
			return contract.DestroyReport{Destroyed: names}, nil
		}).Maybe()
}

func (d *destroyRecorder) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

func newPruneEnv(t *testing.T, rep contract.PlanReport) (*testsuite.TestWorkflowEnvironment, *destroyRecorder) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflowWithOptions(PrunePolicy, registerAs(PrunePolicyName))
	env.RegisterActivity(acts)
	env.SetStartTime(t0)
	env.OnActivity(acts.PlanPrune, mock.Anything, mock.Anything).Return(rep, nil).Once()
	d := &destroyRecorder{}
	d.mock(env)
	env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, ev contract.NotifyEvent) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.notified = append(d.notified, ev)
		return nil
	}).Maybe()
	return env, d
}

func pruneResult(t *testing.T, env *testsuite.TestWorkflowEnvironment) PruneStatus {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var st PruneStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func queryPrune(t *testing.T, env *testsuite.TestWorkflowEnvironment) PruneStatus {
	t.Helper()
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st PruneStatus
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// updateOutcome is filled in when the test environment has processed an update.
type updateOutcome struct {
	rejected error
	result   string
	done     bool
}

// update sends approve-prune.
func update(env *testsuite.TestWorkflowEnvironment, ap Approval) *updateOutcome {
	return sendApproval(env, ApproveUpdate, ap)
}

// sendApproval sends an approval update (approve-prune,
// approve-archive-deletion); the outcome is known once the environment has
// run the update (after the callback that sent it returns).
func sendApproval(env *testsuite.TestWorkflowEnvironment, name string, ap Approval) *updateOutcome {
	o := &updateOutcome{}
	env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
		OnReject:   func(err error) { o.rejected, o.done = err, true },
		OnAccept:   func() {},
		OnComplete: func(res any, err error) { o.result, _ = res.(string); o.done = true },
	}, ap)
	return o
}

func TestPruneWithinLimitsDestroysWithoutApproval(t *testing.T) {
	rep := planReport(2, false)
	env, d := newPruneEnv(t, rep)
	env.ExecuteWorkflow(PrunePolicyName, policyInput())
	st := pruneResult(t, env)
	if st.Phase != PhaseDone || d.count() != 1 {
		t.Fatalf("phase %q, %d destroy calls; want done after 1", st.Phase, d.count())
	}
	if len(d.notified) != 0 {
		t.Errorf("a plan within limits notified: %+v", d.notified)
	}
	req := d.calls[0]
	if req.PlanID != rep.ID || len(req.Snapshots) != 2 || req.Snapshots[0] != rep.Destroy[0] || req.Dataset != zfsname.MustDataset("tank/data") {
		t.Fatalf("destroy request %+v does not match the plan %+v", req, rep.Destroy)
	}
	if !d.at[0].Equal(t0) {
		t.Errorf("destroy at %s: a plan within limits must not wait", d.at[0])
	}
}

func TestPruneNothingToDestroy(t *testing.T) {
	env, d := newPruneEnv(t, planReport(0, false))
	env.ExecuteWorkflow(PrunePolicyName, policyInput())
	if st := pruneResult(t, env); st.Phase != PhaseNothingToDo || d.count() != 0 {
		t.Fatalf("phase %q, %d destroy calls", st.Phase, d.count())
	}
}

func TestPruneWaitsForApprovalThenDestroysThePlan(t *testing.T) {
	rep := planReport(5, true)
	env, d := newPruneEnv(t, rep)
	var during PruneStatus
	var destroysBefore int
	var approval *updateOutcome
	env.RegisterDelayedCallback(func() {
		during = queryPrune(t, env)
		destroysBefore = d.count()
		approval = update(env, Approval{Approve: true, By: "alice", PlanID: rep.ID})
	}, 3*time.Hour)
	env.ExecuteWorkflow(PrunePolicyName, policyInput())
	st := pruneResult(t, env)
	if approval == nil || !approval.done || approval.rejected != nil || !strings.Contains(approval.result, "destroying 5") {
		t.Fatalf("approval outcome %+v", approval)
	}
	if during.Phase != PhaseAwaitingApproval || during.Report == nil || during.Report.ID != rep.ID || len(during.Report.Plan.Decisions) != 5 {
		t.Fatalf("status while waiting: %+v", during)
	}
	if want := t0.Add(DefaultApprovalTimeout); !during.Deadline.Equal(want) {
		t.Errorf("deadline %s, want %s", during.Deadline, want)
	}
	if destroysBefore != 0 {
		t.Fatal("destroyed before approval")
	}
	// The operator is told that the plan waits, until when and how to answer.
	if len(d.notified) != 1 || d.notified[0].Subject != "plan of tank/data waits for approval" ||
		!strings.Contains(d.notified[0].Body, "zcloud policy approve tank/data") || !strings.Contains(d.notified[0].Body, rep.ID) ||
		!strings.Contains(d.notified[0].Body, t0.Add(DefaultApprovalTimeout).Format(time.RFC3339)) {
		t.Errorf("notifications %+v", d.notified)
	}
	if st.Phase != PhaseDone || d.count() != 1 || len(d.calls[0].Snapshots) != 5 || st.Decision == nil || st.Decision.By != "alice" {
		t.Fatalf("after approval: %+v, destroy calls %d", st, d.count())
	}
	if !d.at[0].Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("destroyed at %s, want right after the approval at %s", d.at[0], t0.Add(3*time.Hour))
	}
}

func TestPruneRejectedDestroysNothing(t *testing.T) {
	rep := planReport(5, true)
	env, d := newPruneEnv(t, rep)
	var o *updateOutcome
	env.RegisterDelayedCallback(func() {
		o = update(env, Approval{Approve: false, By: "bob", PlanID: rep.ID})
	}, time.Hour)
	env.ExecuteWorkflow(PrunePolicyName, policyInput())
	st := pruneResult(t, env)
	if st.Phase != PhaseRejected || d.count() != 0 {
		t.Fatalf("phase %q, %d destroy calls: a rejected plan must destroy nothing", st.Phase, d.count())
	}
	if o == nil || o.rejected != nil || !strings.Contains(o.result, "nothing will be destroyed") {
		t.Errorf("update outcome %+v", o)
	}
}

func TestPruneApprovalTimeoutDestroysNothing(t *testing.T) {
	rep := planReport(5, true)
	env, d := newPruneEnv(t, rep)
	in := policyInput()
	in.ApprovalTimeout = 90 * time.Minute
	var before PruneStatus
	env.RegisterDelayedCallback(func() { before = queryPrune(t, env) }, 89*time.Minute)
	env.ExecuteWorkflow(PrunePolicyName, in)
	st := pruneResult(t, env)
	if before.Phase != PhaseAwaitingApproval {
		t.Fatalf("phase a minute before the timeout: %q", before.Phase)
	}
	if st.Phase != PhaseTimedOut || d.count() != 0 {
		t.Fatalf("phase %q, %d destroy calls: a timed-out approval must destroy nothing", st.Phase, d.count())
	}
	if got := env.Now().Sub(t0); got < 90*time.Minute || got > 91*time.Minute {
		t.Errorf("timed out after %s, want 90m", got)
	}
}

func TestApprovalValidator(t *testing.T) {
	rep := planReport(5, true)
	env, d := newPruneEnv(t, rep)
	type attempt struct {
		ap      Approval
		wantErr string // "" accepted
	}
	attempts := []attempt{
		{Approval{Approve: true, By: "mallory", PlanID: "0123456789ab"}, "is not the plan waiting"},
		{Approval{Approve: true, By: "mallory"}, "is not the plan waiting"},
		{Approval{Approve: true, By: "  ", PlanID: rep.ID}, "by"},
		{Approval{Approve: false, By: "carol", PlanID: rep.ID}, ""},
	}
	got := make([]*updateOutcome, len(attempts))
	env.RegisterDelayedCallback(func() {
		for i, at := range attempts {
			got[i] = update(env, at.ap)
		}
	}, time.Hour)
	env.ExecuteWorkflow(PrunePolicyName, policyInput())
	st := pruneResult(t, env)
	for i, at := range attempts {
		o := got[i]
		switch {
		case o == nil || !o.done:
			t.Errorf("attempt %d %+v: no outcome", i, at.ap)
		case at.wantErr == "" && o.rejected != nil:
			t.Errorf("attempt %d %+v rejected: %v", i, at.ap, o.rejected)
		case at.wantErr != "" && (o.rejected == nil || !strings.Contains(o.rejected.Error(), at.wantErr)):
			t.Errorf("attempt %d %+v: got %v, want rejection mentioning %q", i, at.ap, o.rejected, at.wantErr)
		}
	}
	if st.Phase != PhaseRejected || d.count() != 0 || st.Decision.By != "carol" {
		t.Fatalf("only carol's rejection may count: %+v, %d destroys", st, d.count())
	}
}

func TestApprovalRefusedWhenNothingWaitsOrAlreadyDecided(t *testing.T) {
	ok := Approval{Approve: true, By: "x", PlanID: "abc"}
	phase := PhaseDestroying
	g := &approvalGate{plan: "plan", dataset: "tank/data", statusCmd: "zcloud policy status", phase: &phase, planID: "abc"}
	if err := g.validate(ok); err == nil || !strings.Contains(err.Error(), "no plan") {
		t.Fatalf("while destroying: got %v", err)
	}
	phase = PhaseAwaitingApproval
	g.decision = &Approval{By: "carol"}
	if err := g.validate(ok); err == nil || !strings.Contains(err.Error(), "already decided by carol") {
		t.Fatalf("second decision: got %v", err)
	}
	g.decision = nil
	if err := g.validate(ok); err != nil {
		t.Fatalf("valid approval refused: %v", err)
	}
}

func TestPruneRejectsBadInputWithoutTouchingZFS(t *testing.T) {
	for _, in := range []PolicyInput{
		{Dataset: "tank/a;rm -rf /", Policy: retention.Policy{Daily: 1}},
		{Dataset: "tank/a"}, // keeps nothing: would destroy almost everything
	} {
		var s testsuite.WorkflowTestSuite
		env := newTestEnv(&s)
		env.RegisterWorkflowWithOptions(PrunePolicy, registerAs(PrunePolicyName))
		env.RegisterActivity(acts) // unmocked: calling one would panic on the nil receiver
		env.ExecuteWorkflow(PrunePolicyName, in)
		if err := env.GetWorkflowError(); err == nil {
			t.Errorf("%+v: accepted", in)
		}
	}
}

func newTickEnv(t *testing.T, due bool) (*testsuite.TestWorkflowEnvironment, *[]contract.SnapshotRequest, *[]PolicyInput) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflowWithOptions(SnapshotPolicy, registerAs(SnapshotPolicyName))
	env.RegisterActivity(acts)
	env.SetStartTime(t0)
	env.OnActivity(acts.SnapshotDue, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.DueRequest) (contract.DueReport, error) {
			if !req.Now.Equal(t0) {
				return contract.DueReport{}, errors.New("due asked for " + req.Now.String())
			}
			if due {
				return contract.DueReport{Due: true, Kinds: []retention.Kind{retention.Hourly}}, nil
			}
			return contract.DueReport{}, nil
		}).Once()
	var snaps []contract.SnapshotRequest
	env.OnActivity(acts.TakeSnapshot, mock.Anything, mock.Anything).Return(
		func(_ context.Context, req contract.SnapshotRequest) error { snaps = append(snaps, req); return nil }).Maybe()
	var prunes []PolicyInput
	env.OnWorkflow(PrunePolicy, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in PolicyInput) (PruneStatus, error) {
			prunes = append(prunes, in)
			return PruneStatus{Phase: PhaseDone}, nil
		})
	return env, &snaps, &prunes
}

func TestSnapshotPolicyTakesTheDueSnapshotThenStartsThePrune(t *testing.T) {
	env, snaps, prunes := newTickEnv(t, true)
	in := policyInput()
	in.Policy.Recursive = true
	env.ExecuteWorkflow(SnapshotPolicyName, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var st PolicyStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	want := "tank/data@zcloud_20260329T003000Z"
	if len(*snaps) != 1 || (*snaps)[0].Snapshot.String() != want || !(*snaps)[0].Recursive {
		t.Fatalf("snapshots %+v, want one recursive %s", *snaps, want)
	}
	if st.Snapshot != want || st.Phase != "done" || st.PruneWorkflow != PruneWorkflowID("tank/data") {
		t.Fatalf("status %+v", st)
	}
	if len(*prunes) != 1 || (*prunes)[0].Dataset != "tank/data" {
		t.Fatalf("prunes %+v", *prunes)
	}
}

func TestSnapshotPolicyNotDueTakesNoSnapshotButPrunes(t *testing.T) {
	env, snaps, prunes := newTickEnv(t, false)
	env.ExecuteWorkflow(SnapshotPolicyName, policyInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(*snaps) != 0 || len(*prunes) != 1 {
		t.Fatalf("snapshots %+v prunes %d: want none and one", *snaps, len(*prunes))
	}
}

// acts is a nil activities receiver: tests mock and register activities by
// method value; the workflows schedule them by their contract names.
var acts *activities.Activities

func registerAs(name string) workflow.RegisterOptions { return workflow.RegisterOptions{Name: name} }

// A prune cancelled while its plan waits for approval ends as cancelled
// (not failed) and destroys nothing.
func TestPruneCancelledEndsCancelled(t *testing.T) {
	env, d := newPruneEnv(t, planReport(5, true))
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
	env.ExecuteWorkflow(PrunePolicyName, policyInput())
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("a cancelled prune ended with %v, want a cancellation", err)
	}
	if st := queryPrune(t, env); st.Phase != PhaseCancelled || d.count() != 0 {
		t.Fatalf("after the cancellation: phase %q, %d destroys", st.Phase, d.count())
	}
}

// With staging after each tick, a tick that takes a snapshot starts the
// dataset's Staging workflow (ID staging/<dataset>) into the staging
// dataset; a tick that takes none starts no staging.
func TestSnapshotPolicyStartsStagingAfterItsSnapshot(t *testing.T) {
	for _, due := range []bool{true, false} {
		env, _, _ := newTickEnv(t, due)
		var started []string
		env.OnWorkflow(Staging, mock.Anything, mock.Anything).Return(
			func(ctx workflow.Context, in StagingInput) (StagingStatus, error) {
				started = append(started, workflow.GetInfo(ctx).WorkflowExecution.ID+" "+in.Source+" -> "+in.Dataset)
				return StagingStatus{Phase: PhaseDone}, nil
			})
		in := policyInput()
		in.StagingDataset = "tank/staging/data"
		env.ExecuteWorkflow(SnapshotPolicyName, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		var st PolicyStatus
		if err := env.GetWorkflowResult(&st); err != nil {
			t.Fatal(err)
		}
		if !due {
			if len(started) != 0 || st.StagingWorkflow != "" {
				t.Fatalf("no snapshot, yet staging started: %v %+v", started, st)
			}
			continue
		}
		if want := "staging/tank/data tank/data -> tank/staging/data"; len(started) != 1 || started[0] != want {
			t.Fatalf("staging runs %q, want [%q]", started, want)
		}
		if st.StagingWorkflow != StagingWorkflowID("tank/data") || st.PruneWorkflow == "" {
			t.Fatalf("status %+v", st)
		}
	}
}
