package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
)

// PoolSessionName is the registered name of PoolSession.
const PoolSessionName = "PoolSession"

// PoolSessionInput names the pool a session mounts and the session.
type PoolSessionInput struct {
	Pool    string `json:"pool"`
	Session string `json:"session"` // the session's workflow id

	fields inputFields // fields the input has that the type lacks (input.go)
}

// PoolSession is a session's hold on its pool: it runs under the pool's
// operation id (pool/NAME), the id of every create, grow, scrub and
// destroy, from before the session attaches the pool's volumes until
// after it detached them, and does nothing else. Temporal runs one
// workflow per id, so while it runs those operations are refused (the CLI
// and a scheduled scrub name it), and a session started during one of
// them is refused naming that operation. It ends when the session
// cancels it (or closes: the parent close policy terminates it).
func PoolSession(ctx workflow.Context, in PoolSessionInput) (PoolResult, error) {
	if err := in.fields.refuse(PoolSessionName); err != nil {
		return PoolResult{}, err
	}
	t, err := newTracker(ctx, "session", in.Pool)
	if err != nil {
		return PoolResult{}, err
	}
	t.st.Phase = "mounted by session " + in.Session
	err = workflow.Await(ctx, func() bool { return false })
	t.st.Phase = "released by session " + in.Session
	return PoolResult{Pool: in.Pool}, err
}

// sessionHoldsPoolChange versions the session's hold on its pool.
const sessionHoldsPoolChange = "session-holds-pool"

// holdPool starts PoolSession under the pool's operation id. If another
// operation holds the id, the session fails before it launches anything,
// naming that operation.
func (s *session) holdPool(ctx workflow.Context) error {
	if workflow.GetVersion(ctx, sessionHoldsPoolChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	id := PoolWorkflowID(s.plan.Pool)
	quick := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	// Disconnected: cancelling the session must not end the hold before
	// the teardown has detached the volumes.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	for attempt := 1; ; attempt++ {
		hctx, cancel := workflow.WithCancel(dctx)
		cctx := workflow.WithChildOptions(hctx, workflow.ChildWorkflowOptions{
			WorkflowID: id,
			// Wait until the hold has really ended before the session
			// reports done, so an operation started then is not refused.
			WaitForCancellation:   true,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_TERMINATE,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		})
		f := workflow.ExecuteChildWorkflow(cctx, PoolSessionName, PoolSessionInput{Pool: s.plan.Pool, Session: workflow.GetInfo(ctx).WorkflowExecution.ID})
		err := f.GetChildWorkflowExecution().Get(ctx, nil)
		if err == nil {
			s.hold, s.holdCancel = f, cancel
			return nil
		}
		cancel()
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return failStep(nil, nil, "hold pool "+s.plan.Pool, err)
		}
		var op contract.PoolOperation
		if err := workflow.ExecuteActivity(quick, contract.PoolDescribeOperation, id).Get(ctx, &op); err != nil {
			return failStep(nil, nil, "describe "+id, err)
		}
		if !op.Running && attempt < 3 {
			continue // it ended in between: take the id now
		}
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"pool %s is busy: a %s holds it (workflow %s run %s, started %s); one operation per pool at a time, so this session launched nothing",
			s.plan.Pool, operationName(op.Type), id, op.RunID, op.Started.UTC().Format(time.RFC3339)), contract.ErrTypePoolBusy, nil)
	}
}

// releasePool ends the hold (after the volumes were detached).
func (s *session) releasePool(ctx workflow.Context) {
	if s.hold == nil {
		return
	}
	s.holdCancel()
	_ = s.hold.Get(ctx, nil)
	s.hold, s.holdCancel = nil, nil
}
