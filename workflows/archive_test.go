package workflows

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"zcloud/archive/archivetypes"
	"zcloud/contract"
)

func archiveIn() ArchiveInput {
	return ArchiveInput{Dataset: "tank/data", Cycle: 30 * 24 * time.Hour, SanityMinPercent: 50, Class: "GLACIER",
		MaxDeleteCycles: 1, MaxDeleteBytes: -1}
}

// calls records which mocked activities ran.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *calls) get(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[name]
}

func newArchiveEnv(t *testing.T, plan contract.ArchivePlan, check contract.CycleCheck, del contract.DeletionPlan) (*testsuite.TestWorkflowEnvironment, *calls) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflowWithOptions(Archive, registerAs(ArchiveName))
	env.RegisterActivity(acts)
	env.SetStartTime(t0)
	c := &calls{}
	env.OnActivity(acts.PlanArchive, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.ArchivePlanRequest) (contract.ArchivePlan, error) {
		c.add("plan")
		if !req.Now.Equal(t0) {
			t.Errorf("plan at %s, want the workflow's time %s", req.Now, t0)
		}
		return plan, nil
	})
	env.OnActivity(acts.ArchiveStream, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.ArchiveStreamRequest) (contract.ArchiveStreamReport, error) {
		c.add("stream")
		if req.Cycle != plan.Cycle || req.To != plan.To || req.Kind != plan.Kind {
			t.Errorf("stream request %+v does not follow the plan %+v", req, plan)
		}
		return contract.ArchiveStreamReport{Stream: contract.StreamInfo{ID: "x", Kind: req.Kind, To: req.To}}, nil
	}).Maybe()
	env.OnActivity(acts.HoldBase, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.HoldRequest) error {
		c.add("hold")
		if req.Tag != contract.ArchiveHoldTag || req.Snapshot.Name() != plan.To.Name {
			t.Errorf("hold %+v", req)
		}
		return nil
	}).Maybe()
	env.OnActivity(acts.CheckArchiveCycle, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.CycleCheckRequest) (contract.CycleCheck, error) {
		c.add("check")
		return check, nil
	}).Maybe()
	env.OnActivity(acts.PlanArchiveDeletion, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.DeletionPlanRequest) (contract.DeletionPlan, error) {
		c.add("plan-deletion")
		return del, nil
	}).Maybe()
	env.OnActivity(acts.DeleteArchiveCycles, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.DeleteCyclesRequest) (contract.DeletionReport, error) {
		c.add("delete")
		if req.PlanID != del.ID || len(req.Cycles) != len(del.Delete) {
			t.Errorf("delete %+v is not the plan %+v", req, del)
		}
		return contract.DeletionReport{Deleted: req.Cycles, Objects: 3}, nil
	}).Maybe()
	return env, c
}

func fullPlan() contract.ArchivePlan {
	return contract.ArchivePlan{Action: contract.ArchiveFull, Kind: archivetypes.Full, Cycle: "c2", CurrentCycle: "c1", CurrentVerified: true,
		To: archivetypes.SnapRef{Name: "s9", GUID: 9}}
}

func deletion(n int, approval bool) contract.DeletionPlan {
	d := contract.DeletionPlan{ID: "plan1", Dataset: "tank/data", NeedsApproval: approval}
	for i := 0; i < n; i++ {
		d.Delete = append(d.Delete, contract.CycleSummary{ID: "c1"})
	}
	return d
}

func TestArchiveNewCycleVerifiedThenOldCycleDeleted(t *testing.T) {
	env, c := newArchiveEnv(t, fullPlan(), contract.CycleCheck{Cycle: "c2", Verified: true}, deletion(1, false))
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"plan", "stream", "hold", "check", "plan-deletion", "delete"} {
		if c.get(step) != 1 {
			t.Errorf("%s ran %d times", step, c.get(step))
		}
	}
}

// The sanity check's failure ends the run before any deletion is planned.
func TestArchiveSanityFailureDeletesNothing(t *testing.T) {
	env, c := newArchiveEnv(t, fullPlan(), contract.CycleCheck{Cycle: "c2", Sanity: "new full is 10% of the previous"}, deletion(1, false))
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "previous cycle is kept") {
		t.Fatalf("want a sanity failure, got %v", err)
	}
	if c.get("plan-deletion") != 0 || c.get("delete") != 0 {
		t.Fatal("deletion planned or run after a failed sanity check")
	}
}

func TestArchiveHeadMismatchDeletesNothing(t *testing.T) {
	env, c := newArchiveEnv(t, fullPlan(), contract.CycleCheck{Cycle: "c2", Problems: []string{"k: size 1, manifest says 2"}}, deletion(1, false))
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "k: size 1") {
		t.Fatalf("want a verify failure naming the object, got %v", err)
	}
	if c.get("delete") != 0 {
		t.Fatal("deleted after a failed verification")
	}
}

func TestArchiveSkipRunsNoStreamButStillRotates(t *testing.T) {
	plan := contract.ArchivePlan{Action: contract.ArchiveSkip, Reason: "no new snapshot", CurrentCycle: "c2", CurrentVerified: true}
	env, c := newArchiveEnv(t, plan, contract.CycleCheck{}, deletion(0, false))
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if c.get("stream") != 0 || c.get("hold") != 0 || c.get("check") != 0 || c.get("plan-deletion") != 1 || c.get("delete") != 0 {
		t.Fatalf("calls %v", c.n)
	}
}

func TestArchiveIncrementalInVerifiedCycleSkipsTheCheck(t *testing.T) {
	plan := contract.ArchivePlan{Action: contract.ArchiveIncremental, Kind: archivetypes.Incremental, Cycle: "c2", CurrentCycle: "c2", CurrentVerified: true,
		From: archivetypes.SnapRef{Name: "s8", GUID: 8}, To: archivetypes.SnapRef{Name: "s9", GUID: 9}}
	env, c := newArchiveEnv(t, plan, contract.CycleCheck{}, deletion(0, false))
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if c.get("stream") != 1 || c.get("check") != 0 {
		t.Fatalf("calls %v", c.n)
	}
}

func archiveUpdate(env *testsuite.TestWorkflowEnvironment, ap Approval) *updateOutcome {
	return sendApproval(env, ApproveDeletionUpdate, ap)
}

func TestArchiveDeletionOverThresholdWaitsAndRejectDeletesNothing(t *testing.T) {
	env, c := newArchiveEnv(t, fullPlan(), contract.CycleCheck{Cycle: "c2", Verified: true}, deletion(2, true))
	var wrong, noBy, reject *updateOutcome
	var during ArchiveStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StatusQuery)
		if err == nil {
			v.Get(&during)
		}
		wrong = archiveUpdate(env, Approval{Approve: true, By: "eve", PlanID: "other"})
		noBy = archiveUpdate(env, Approval{Approve: true, PlanID: "plan1"})
		reject = archiveUpdate(env, Approval{Approve: false, By: "bob", PlanID: "plan1"})
	}, 2*time.Hour)
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var st ArchiveStatus
	env.GetWorkflowResult(&st)
	if during.Phase != PhaseAwaitingApproval || during.Deletion == nil || during.Deletion.ID != "plan1" {
		t.Fatalf("status while waiting: %+v", during)
	}
	if wrong == nil || wrong.rejected == nil || !strings.Contains(wrong.rejected.Error(), "not the deletion plan") {
		t.Fatalf("wrong plan ID: %+v", wrong)
	}
	if noBy == nil || noBy.rejected == nil {
		t.Fatalf("empty 'by' accepted: %+v", noBy)
	}
	if reject == nil || reject.rejected != nil || !strings.Contains(reject.result, "nothing will be deleted") {
		t.Fatalf("reject: %+v", reject)
	}
	if st.Phase != PhaseRejected || c.get("delete") != 0 {
		t.Fatalf("phase %s, %d deletes", st.Phase, c.get("delete"))
	}
}

func TestArchiveDeletionApprovedDeletesThePlan(t *testing.T) {
	env, c := newArchiveEnv(t, fullPlan(), contract.CycleCheck{Cycle: "c2", Verified: true}, deletion(2, true))
	var ok *updateOutcome
	env.RegisterDelayedCallback(func() {
		ok = archiveUpdate(env, Approval{Approve: true, By: "alice", PlanID: "plan1"})
	}, time.Hour)
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if ok == nil || ok.rejected != nil || c.get("delete") != 1 {
		t.Fatalf("approval %+v, %d deletes", ok, c.get("delete"))
	}
}

func TestArchiveApprovalTimeoutDeletesNothing(t *testing.T) {
	env, c := newArchiveEnv(t, fullPlan(), contract.CycleCheck{Cycle: "c2", Verified: true}, deletion(2, true))
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	var st ArchiveStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhaseTimedOut || c.get("delete") != 0 {
		t.Fatalf("phase %s, %d deletes", st.Phase, c.get("delete"))
	}
}

func restoreIn() RestoreInput {
	return RestoreInput{Dataset: "tank/data", TargetDataset: "tank/restored", Identity: "owner", Tier: "Bulk", Days: 1}
}

func restorePlan(needsRestore bool) contract.RestorePlan {
	return contract.RestorePlan{Dataset: "tank/data", Snapshot: "s2", NeedsRestore: needsRestore, Chain: []contract.StreamInfo{
		{ID: "full-1", Cycle: "c1", Kind: archivetypes.Full, Key: "k1", To: archivetypes.SnapRef{Name: "s0", GUID: 1}},
		{ID: "incr-1-2", Cycle: "c1", Kind: archivetypes.Incremental, Key: "k2", To: archivetypes.SnapRef{Name: "s1", GUID: 2}},
		{ID: "incr-2-3", Cycle: "c1", Kind: archivetypes.Incremental, Key: "k3", To: archivetypes.SnapRef{Name: "s2", GUID: 3}},
	}}
}

// The restore waits on durable timers, polling at the tier's interval,
// until every object is readable, then receives the chain in order.
func TestRestoreWaitsDurablyThenReceivesInOrder(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflowWithOptions(Restore, registerAs(RestoreName))
	env.RegisterActivity(acts)
	env.SetStartTime(t0)
	env.OnActivity(acts.PlanArchiveRestore, mock.Anything, mock.Anything).Return(restorePlan(true), nil)
	requested := 0
	env.OnActivity(acts.RequestArchiveRetrieval, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.RetrievalRequest) error {
		requested++
		if len(r.Keys) != 3 || r.Tier != "Bulk" {
			t.Errorf("retrieval request %+v", r)
		}
		return nil
	})
	var pollTimes []time.Time
	env.OnActivity(acts.ArchiveRetrievalStatus, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.RetrievalRequest) (contract.Retrieval, error) {
		pollTimes = append(pollTimes, env.Now())
		ready := 0
		if env.Now().Sub(t0) >= 7*time.Hour { // Bulk: 5-12 hours
			ready = 3
		}
		return contract.Retrieval{Ready: ready, Total: 3}, nil
	})
	var order []string
	env.OnActivity(acts.ReceiveArchiveStream, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.ReceiveRequest) (contract.ReceiveReport, error) {
		order = append(order, r.StreamID)
		if r.Identity != "owner" || r.TargetDataset.String() != "tank/restored" {
			t.Errorf("receive request %+v", r)
		}
		return contract.ReceiveReport{StreamID: r.StreamID}, nil
	})
	var during RestoreStatus
	env.RegisterDelayedCallback(func() {
		v, _ := env.QueryWorkflow(StatusQuery)
		v.Get(&during)
	}, 3*time.Hour+time.Minute)
	env.ExecuteWorkflow(RestoreName, restoreIn())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if during.Phase != PhaseWaitingRetrieval || during.Retrieval == nil || during.Retrieval.Ready != 0 || len(during.Received) != 0 {
		t.Fatalf("status while waiting: %+v", during)
	}
	if strings.Join(order, ",") != "full-1,incr-1-2,incr-2-3" {
		t.Fatalf("received %v", order)
	}
	// Bulk polls hourly: 8 polls over 7 hours, not a busy loop.
	if len(pollTimes) != 8 || pollTimes[1].Sub(pollTimes[0]) != time.Hour || requested != 1 {
		t.Fatalf("%d polls at %v, %d requests", len(pollTimes), pollTimes, requested)
	}
}

func TestRestorePlanOnlyReceivesNothing(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflowWithOptions(Restore, registerAs(RestoreName))
	env.RegisterActivity(acts)
	env.OnActivity(acts.PlanArchiveRestore, mock.Anything, mock.Anything).Return(restorePlan(true), nil)
	in := restoreIn()
	in.PlanOnly, in.TargetDataset = true, ""
	env.ExecuteWorkflow(RestoreName, in)
	var st RestoreStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != PhasePlanned || st.Plan == nil || len(st.Plan.Chain) != 3 {
		t.Fatalf("%+v", st)
	}
}

func TestRestoreRefusesBadNamesBeforeAnyActivity(t *testing.T) {
	for _, in := range []RestoreInput{
		{Dataset: "tank/data;rm -rf /", TargetDataset: "tank/x", Identity: "owner"},
		{Dataset: "tank/data", TargetDataset: "tank/$(reboot)", Identity: "owner"},
		{Dataset: "tank/data", Snapshot: "a b", TargetDataset: "tank/x", Identity: "owner"},
	} {
		var s testsuite.WorkflowTestSuite
		env := newTestEnv(&s)
		env.RegisterWorkflowWithOptions(Restore, registerAs(RestoreName))
		env.RegisterActivity(acts)
		env.ExecuteWorkflow(RestoreName, in)
		if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "input") {
			t.Errorf("%+v: %v", in, err)
		}
	}
}

func TestVerifyReportsEveryFindingAndFails(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterWorkflowWithOptions(ArchiveVerify, registerAs(VerifyName))
	env.RegisterActivity(acts)
	plan := contract.VerifyPlan{Dataset: "tank/data", Streams: restorePlan(false).Chain,
		HeadProblems: []contract.Finding{{StreamID: "incr-2-3", Cycle: "c1", Key: "k3", Kind: "missing", Detail: "k3: object not found"}}}
	env.OnActivity(acts.PlanArchiveVerify, mock.Anything, mock.Anything).Return(plan, nil)
	var verified []string
	env.OnActivity(acts.VerifyArchiveStream, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.VerifyStreamRequest) (contract.VerifyStreamReport, error) {
		verified = append(verified, r.StreamID)
		if r.StreamID == "full-1" {
			return contract.VerifyStreamReport{StreamID: r.StreamID, Finding: &contract.Finding{StreamID: "full-1", Key: "k1", Kind: "corrupt", Detail: "part 2 sha256"}}, nil
		}
		return contract.VerifyStreamReport{StreamID: r.StreamID, OK: true}, nil
	})
	env.ExecuteWorkflow(VerifyName, VerifyInput{Dataset: "tank/data"})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "missing k3") || !strings.Contains(err.Error(), "corrupt k1") {
		t.Fatalf("want both findings named, got %v", err)
	}
	// The missing object is not re-read; the others all are.
	if strings.Join(verified, ",") != "full-1,incr-1-2" {
		t.Fatalf("verified %v", verified)
	}
}

// An archive cancelled while its deletion plan waits for approval ends as
// cancelled (not failed) and deletes nothing.
func TestArchiveCancelledEndsCancelled(t *testing.T) {
	env, c := newArchiveEnv(t, fullPlan(), contract.CycleCheck{Cycle: "c2", Verified: true}, deletion(2, true))
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
	env.ExecuteWorkflow(ArchiveName, archiveIn())
	if err := env.GetWorkflowError(); !temporal.IsCanceledError(err) {
		t.Fatalf("a cancelled archive ended with %v, want a cancellation", err)
	}
	var st ArchiveStatus
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Get(&st); err != nil || st.Phase != PhaseCancelled || c.get("delete") != 0 {
		t.Fatalf("after the cancellation: %+v (%v), %d deletes", st, err, c.get("delete"))
	}
}
