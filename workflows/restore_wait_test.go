package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"zcloud/contract"
)

// restoreWaitEnv is a restore whose every object is readable once poll
// says so; it records the received streams.
func restoreWaitEnv(t *testing.T, poll func(now time.Time) (contract.Retrieval, error)) (*testsuite.TestWorkflowEnvironment, *[]string) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Restore, registerAs(RestoreName))
	env.RegisterActivity(acts)
	env.SetStartTime(t0)
	env.OnActivity(acts.PlanArchiveRestore, mock.Anything, mock.Anything).Return(restorePlan(true), nil)
	env.OnActivity(acts.RequestArchiveRetrieval, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(acts.ArchiveRetrievalStatus, mock.Anything, mock.Anything).Return(func(context.Context, contract.RetrievalRequest) (contract.Retrieval, error) {
		return poll(env.Now())
	})
	var order []string
	env.OnActivity(acts.ReceiveArchiveStream, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.ReceiveRequest) (contract.ReceiveReport, error) {
		order = append(order, r.StreamID)
		return contract.ReceiveReport{StreamID: r.StreamID}, nil
	}).Maybe()
	return env, &order
}

// Every status poll fails (a retryable error: S3 or the network in trouble)
// for 15 minutes of simulated time, long past the poll activity's own
// retries: the restore keeps waiting and, once polls answer, completes.
func TestRestoreWaitSurvivesFifteenMinutesOfFailingPolls(t *testing.T) {
	var failures, polls int
	var firstOK time.Time
	env, order := restoreWaitEnv(t, func(now time.Time) (contract.Retrieval, error) {
		polls++
		if now.Sub(t0) < 15*time.Minute {
			failures++
			return contract.Retrieval{}, errors.New("HeadObject: https response error StatusCode: 503, SlowDown")
		}
		if firstOK.IsZero() {
			firstOK = now
		}
		return contract.Retrieval{Ready: 3, Total: 3}, nil
	})
	env.ExecuteWorkflow(RestoreName, restoreIn())
	var st RestoreStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatalf("a restore failed after %d failing polls: %v", failures, err)
	}
	if st.Phase != PhaseDone || strings.Join(*order, ",") != "full-1,incr-1-2,incr-2-3" {
		t.Fatalf("status %+v, received %v", st, *order)
	}
	// The failures really outlasted one poll activity's retries (5 tries
	// in ~30 s), and the wait noticed the end of the trouble within its
	// backoff's cap (the Bulk poll interval).
	if failures < 10 || st.PollFailures == 0 || !strings.Contains(st.LastPollError, "503") {
		t.Fatalf("%d failing polls, status %d failures (%q): the trouble was not exercised", failures, st.PollFailures, st.LastPollError)
	}
	if d := firstOK.Sub(t0); d > 15*time.Minute+PollInterval(contract.TierBulk) {
		t.Fatalf("first good poll %s after the start", d)
	}
	t.Logf("%d polls, %d failed (%d failed poll activities), first good poll after %s", polls, failures, st.PollFailures, firstOK.Sub(t0))
}

// A permanent poll error (an object is gone) ends the wait at once.
func TestRestoreWaitEndsOnAPermanentPollError(t *testing.T) {
	polls := 0
	env, order := restoreWaitEnv(t, func(time.Time) (contract.Retrieval, error) {
		polls++
		return contract.Retrieval{}, temporal.NewNonRetryableApplicationError("restore status of k2: object not found", contract.ErrTypeObjectMissing, nil)
	})
	env.ExecuteWorkflow(RestoreName, restoreIn())
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != contract.ErrTypeObjectMissing || !strings.Contains(err.Error(), "k2") {
		t.Fatalf("want %s naming k2, got %v", contract.ErrTypeObjectMissing, err)
	}
	if polls != 1 || len(*order) != 0 {
		t.Fatalf("%d polls, received %v", polls, *order)
	}
}
