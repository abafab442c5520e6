package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"zcloud/activities"
	"zcloud/contract"
)

// A step that keeps failing with a retryable error ends the workflow after
// its policy's attempts (counted, not timed), and the final error keeps
// the last attempt's cause. (The test suite sets no retry state; that the
// error says the retries are spent is checked against a real server in
// e2e.)
func TestTransientFailureIsCappedAndKeepsTheLastCause(t *testing.T) {
	env := newEnv(t)
	var a *activities.Activities
	attempts := 0
	env.OnActivity(a.CheckTargetAt, mock.Anything, mock.Anything).Return(contract.TargetCheck{Target: "b"}, nil)
	env.OnActivity(a.TakeSnapshot, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.SendSnapshots, mock.Anything, mock.Anything).Return(func(context.Context, contract.SendRequest) (contract.SendReport, error) {
		attempts++
		return contract.SendReport{}, errors.New("connection reset by peer (try " + string(rune('0'+attempts%10)) + ")")
	})
	env.ExecuteWorkflow(Replicate, ReplicateInput{Source: "tank/data", Target: "b", TargetDataset: "bk/data"})
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("the workflow succeeded")
	}
	if attempts != 20 {
		t.Errorf("send tried %d times, want the policy's 20", attempts)
	}
	if msg := err.Error(); !strings.Contains(msg, "send: connection reset by peer (try 0)") {
		t.Errorf("final error %q lacks the last cause or the retries spent", msg)
	}
	var st ReplicateStatus
	v, qerr := env.QueryWorkflow(StatusQuery)
	if qerr != nil || v.Get(&st) != nil {
		t.Fatal(qerr)
	}
	if st.Phase != PhaseFailed || !strings.Contains(st.Error, "connection reset by peer (try 0)") {
		t.Errorf("status %+v", st)
	}
}

// A last attempt that timed out keeps the cause of the attempt before it
// (the server hands it on as the timeout's cause).
func TestRootCauseKeepsTheFailureBeforeATimeout(t *testing.T) {
	prev := temporal.NewApplicationError("connection reset by peer", "StepFailed")
	msg, typ := rootCause(temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, prev))
	if msg != "connection reset by peer (then the last attempt timed out: heartbeat)" || typ != "StepFailed" {
		t.Errorf("got %q (%s)", msg, typ)
	}
	msg, typ = rootCause(temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil))
	if msg != "start-to-close timeout" || typ != "Timeout" {
		t.Errorf("got %q (%s)", msg, typ)
	}
}
