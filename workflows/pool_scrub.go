package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/searchattr"
)

// PoolScrub scrubs the pool (importing it first if needed) and reports
// repaired bytes and errors; a scrub that found any fails the workflow
// with that report, so schedules and notifications see it. Started under
// any id but the pool's operation id (a Schedule's run), it runs as a
// child under that id or, while another operation (a grow) holds it,
// skips: see scrubUnderPoolID.
func PoolScrub(ctx workflow.Context, in PoolInput) (PoolResult, error) {
	if err := in.fields.refuse(PoolScrubName); err != nil {
		return PoolResult{}, err
	}
	begin := workflow.Now(ctx)
	t, err := newTracker(ctx, "scrub", in.Pool)
	if err != nil {
		return PoolResult{}, err
	}
	if workflow.GetInfo(ctx).WorkflowExecution.ID != PoolWorkflowID(in.Pool) &&
		workflow.GetVersion(ctx, scrubUnderPoolIDChange, workflow.DefaultVersion, 1) == 1 {
		return scrubUnderPoolID(ctx, t, in)
	}
	p, err := settings(ctx, in.Pool)
	if err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "settings", err)
	}
	t.plan = []string{"pool/import", "pool/scrub", "pool/export"}
	var imported bool
	if err := mount(ctx, t, p); err != nil {
		return PoolResult{}, err
	}
	t.st.Phase = "import"
	t.start("pool/import")
	if err := workflow.ExecuteActivity(poolOpts(ctx, p, 15*time.Minute), contract.PoolImport, p).Get(ctx, &imported); err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "import", err)
	}
	t.finish("pool/import")
	t.st.Phase = "scrub"
	t.start("pool/scrub")
	var r contract.ScrubReport
	if err := workflow.ExecuteActivity(poolOpts(ctx, p, 7*24*time.Hour), contract.PoolScrub, p).Get(ctx, &r); err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "scrub", err)
	}
	t.finish("pool/scrub")
	t.st.Scrub = &r
	res := PoolResult{Pool: p.Name, Scrub: &r}
	t.start("pool/export")
	if err := closePool(ctx, t, p, imported); err != nil {
		return res, err
	}
	t.finish("pool/export")
	res.Seconds = workflow.Now(ctx).Sub(begin).Seconds()
	if !r.Clean() {
		return res, failStep(&t.st.Phase, &t.st.Error, "scrub", temporal.NewNonRetryableApplicationError(r.Summary(), contract.ErrTypeScrubErrors, nil))
	}
	t.st.Phase = "done"
	return res, nil
}

// scrubUnderPoolIDChange versions PoolScrub's taking of the pool's
// operation id (runs started before it scrub directly).
const scrubUnderPoolIDChange = "pool-scrub-under-pool-id"

// scrubUnderPoolID runs the scrub as a child workflow under the pool's
// operation id (pool/NAME), the id every grow, create and destroy runs
// under. Temporal starts at most one running workflow per id, durably and
// whatever the workers do, so a scrub and a grow of the same pool never
// overlap: when the id is taken the scrub does nothing and its result
// says why ("skipped: grow in progress"), and a grow started while the
// scrub runs is refused (the CLI names the scrub). The holder is
// described with a strongly consistent DescribeWorkflowExecution; if it
// finished in between, the start is tried again.
func scrubUnderPoolID(ctx workflow.Context, t *tracker, in PoolInput) (PoolResult, error) {
	id := PoolWorkflowID(in.Pool)
	t.plan = []string{id}
	t.start(id)
	quick := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	cctx := workflow.WithChildOptions(ctx, childJob(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id,
		// The scrub exports the pool it imported: let it finish even if
		// this run is terminated.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, searchattr.Job{Kind: searchattr.KindScrub, Pool: in.Pool}))
	for attempt := 1; ; attempt++ {
		t.st.Phase = "starting the scrub as " + id
		f := workflow.ExecuteChildWorkflow(cctx, PoolScrubName, in)
		var child workflow.Execution
		err := f.GetChildWorkflowExecution().Get(ctx, &child)
		if err == nil {
			t.st.Phase = "scrubbing as " + id + " run " + child.RunID
			var res PoolResult
			if err := f.Get(ctx, &res); err != nil {
				return res, failStep(&t.st.Phase, &t.st.Error, id, err)
			}
			t.finish(id)
			t.st.Scrub = res.Scrub
			t.st.Phase = "done"
			return res, nil
		}
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "start "+id, err)
		}
		var op contract.PoolOperation
		if err := workflow.ExecuteActivity(quick, contract.PoolDescribeOperation, id).Get(ctx, &op); err != nil {
			return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "describe "+id, err)
		}
		if !op.Running && attempt < 3 {
			continue // it ended in between: take the id now
		}
		t.stop(id)
		reason := "skipped: " + operationName(op.Type) + " in progress"
		t.st.Phase = reason + " (" + id + " run " + op.RunID + ")"
		workflow.GetLogger(ctx).Info("scrub skipped", "pool", in.Pool, "reason", reason, "holder", id, "holder_run", op.RunID, "holder_type", op.Type)
		return PoolResult{Pool: in.Pool, Skipped: reason, Holder: &op}, nil
	}
}
