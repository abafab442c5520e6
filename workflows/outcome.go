package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// How every workflow's run ends, as its status's phase shows it.
const (
	PhaseDone      = "done"
	PhaseFailed    = "failed"
	PhaseCancelled = "cancelled"
)

// failStep is the one way a workflow ends on a failed step: err is
// flattened to its root cause (the activity's own message and type, not a
// chain of wrappers), the status (phase and errMsg, nil for a workflow
// without them) says "step: cause", and the returned error is what the
// workflow returns. A cancellation stays a cancellation, so the run ends
// as cancelled rather than failed; anything else is non-retryable, since
// the step's own retries are spent.
func failStep(phase, errMsg *string, step string, err error) error {
	msg, typ := rootCause(err)
	if phase != nil {
		*phase = PhaseFailed
	}
	if errMsg != nil {
		*errMsg = step + ": " + msg
	}
	if temporal.IsCanceledError(err) {
		if phase != nil {
			*phase = PhaseCancelled
		}
		return err
	}
	return temporal.NewNonRetryableApplicationError(step+": "+msg, typ, nil)
}

// versionCancelStays marks where the policy, archive and restore workflows
// started to end a cancelled run as cancelled; before it they reported it
// as a failure, and replaying their older histories must do the same.
const versionCancelStays = "cancelled-run-stays-cancelled"

// failStepVersioned is failStep for those workflows.
func failStepVersioned(ctx workflow.Context, phase, errMsg *string, step string, err error) error {
	if temporal.IsCanceledError(err) && workflow.GetVersion(ctx, versionCancelStays, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		err = temporal.NewApplicationError("cancelled", "Canceled")
	}
	return failStep(phase, errMsg, step, err)
}

// rootCause finds the innermost application error (the activity's own) or
// else describes the failure (a timeout, a cancellation). A step whose
// retries are spent says so, and a last attempt that timed out keeps the
// failure of the attempt before it (the server hands it on as the
// timeout's cause): the cause is never lost to "activity timeout".
func rootCause(err error) (msg, typ string) {
	msg, typ = innerCause(err)
	var te *temporal.TimeoutError
	if errors.As(err, &te) && te.TimeoutType() != enumspb.TIMEOUT_TYPE_UNSPECIFIED {
		what := timeoutNames[te.TimeoutType()]
		var ae *temporal.ApplicationError
		if errors.As(te, &ae) {
			msg += " (then the last attempt timed out: " + what + ")"
		} else {
			msg, typ = what+" timeout", "Timeout"
		}
	}
	var act *temporal.ActivityError
	if errors.As(err, &act) {
		switch act.RetryState() {
		case enumspb.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED:
			msg += " (gave up: every attempt failed)"
		case enumspb.RETRY_STATE_TIMEOUT:
			msg += " (gave up: the step's time for retries ran out)"
		}
	}
	return msg, typ
}

var timeoutNames = map[enumspb.TimeoutType]string{
	enumspb.TIMEOUT_TYPE_HEARTBEAT:         "heartbeat",
	enumspb.TIMEOUT_TYPE_START_TO_CLOSE:    "start-to-close",
	enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START: "schedule-to-start",
	enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE: "schedule-to-close",
}

// innerCause is the innermost application error's message and type, or
// the error itself described.
func innerCause(err error) (msg, typ string) {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		msg, typ = ae.Message(), ae.Type()
		for {
			var inner *temporal.ApplicationError
			if !errors.As(ae.Unwrap(), &inner) {
				return msg, typ
			}
			ae, msg, typ = inner, inner.Message(), inner.Type()
		}
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return err.Error(), "Timeout"
	}
	var ce *temporal.CanceledError
	if errors.As(err, &ce) {
		return "cancelled", "Canceled"
	}
	return err.Error(), "StepFailed"
}

// Approval is the argument of an approval update (approve-prune,
// approve-archive-deletion).
type Approval struct {
	Approve bool   `json:"approve"` // false rejects: nothing is destroyed
	By      string `json:"by"`      // who decided, recorded in history and status
	PlanID  string `json:"plan_id"` // must be the plan waiting, so no one approves a plan they did not see
}

// approvalGate is the one approval step of the workflows whose plan may
// need an operator's yes (PrunePolicy's prune plan, Archive's deletion
// plan): an Update, whose validator only reads state, records the
// decision; wait blocks durably until it comes or the timeout passes.
type approvalGate struct {
	plan      string  // what waits, in messages: "plan", "deletion plan"
	dataset   string  // whose plan
	statusCmd string  // the command that shows the plan, e.g. "zcloud policy status"
	phase     *string // the run's phase: decisions are taken only while awaiting approval
	planID    string  // the plan waiting (set by wait)
	decision  *Approval
}

// newApprovalGate registers the gate's update. decided records the
// decision in the caller's status and words the update's reply.
func newApprovalGate(ctx workflow.Context, update, description, plan, dataset, statusCmd string, phase *string,
	decided func(ap Approval) string) (*approvalGate, error) {
	g := &approvalGate{plan: plan, dataset: dataset, statusCmd: statusCmd, phase: phase}
	err := workflow.SetUpdateHandlerWithOptions(ctx, update,
		func(ctx workflow.Context, ap Approval) (string, error) {
			g.decision = &ap
			return decided(ap), nil
		},
		workflow.UpdateHandlerOptions{
			Validator:   func(ctx workflow.Context, ap Approval) error { return g.validate(ap) },
			Description: description,
		})
	return g, err
}

// validate refuses an approval that cannot apply to the plan waiting now.
func (g *approvalGate) validate(ap Approval) error {
	if *g.phase != PhaseAwaitingApproval || g.planID == "" {
		return fmt.Errorf("no %s of %s is waiting for approval (phase: %s)", g.plan, g.dataset, *g.phase)
	}
	if g.decision != nil {
		return fmt.Errorf("%s %s was already decided by %s", g.plan, g.planID, g.decision.By)
	}
	if ap.PlanID != g.planID {
		return fmt.Errorf("plan %q is not the %s waiting for approval (%s): look at it with '%s %s' and approve that one",
			ap.PlanID, g.plan, g.planID, g.statusCmd, g.dataset)
	}
	if strings.TrimSpace(ap.By) == "" {
		return fmt.Errorf("say who decides: 'by' is empty")
	}
	return nil
}

// wait puts the run in PhaseAwaitingApproval for planID until a decision
// or timeout (DefaultApprovalTimeout when zero), recording the deadline.
// It reports whether the plan may go ahead; when not, the phase says why
// (rejected or timed out).
func (g *approvalGate) wait(ctx workflow.Context, planID string, timeout time.Duration, deadline *time.Time) (bool, error) {
	if timeout <= 0 {
		timeout = DefaultApprovalTimeout
	}
	g.planID = planID
	*g.phase = PhaseAwaitingApproval
	*deadline = workflow.Now(ctx).Add(timeout)
	workflow.GetLogger(ctx).Info(g.plan+" waits for approval", "dataset", g.dataset, "plan", planID)
	g.notifyWaits(ctx, *deadline)
	decided, err := workflow.AwaitWithTimeout(ctx, timeout, func() bool { return g.decision != nil })
	switch {
	case err != nil:
		return false, err
	case !decided:
		*g.phase = PhaseTimedOut
		return false, nil
	case !g.decision.Approve:
		*g.phase = PhaseRejected
		return false, nil
	}
	return true, nil
}
