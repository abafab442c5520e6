package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"zcloud/activities"
	"zcloud/contract"
	"zcloud/searchattr"
)

type recorded []RunOutcome

func (r *recorded) RunDone(o RunOutcome) { *r = append(*r, o) }

// The worker's interceptor reports how a run ended, under the job its
// search attributes name, and leaves the cause in the run's current
// details (what the Web UI shows).
func TestInterceptorReportsOutcomeAndDetails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sendErr error
		outcome string
		details []string
		bytes   int64
	}{
		{"failed", temporal.NewNonRetryableApplicationError("cannot open 'nosuchpool': pool does not exist", contract.ErrTypeNotFound, nil),
			OutcomeError, []string{"**phase:** failed", "**error:** send: cannot open 'nosuchpool': pool does not exist", "**ended:** failed: send: cannot open"}, 0},
		{"ok", nil, OutcomeOK, []string{"**phase:** done", "**ended:** done, 42 bytes"}, 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorded
			env := newEnv(t)
			env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute,
				Interceptors: []interceptor.WorkerInterceptor{NewInterceptor(&rec)}})
			job := searchattr.Job{Kind: searchattr.KindReplicate, Datasets: []string{"tank/data"}, Target: "b"}
			if err := env.SetTypedSearchAttributesOnStart(job.Attributes()); err != nil {
				t.Fatal(err)
			}
			var a *activities.Activities
			env.OnActivity(a.CheckTargetAt, mock.Anything, mock.Anything).Return(contract.TargetCheck{Target: "b"}, nil)
			env.OnActivity(a.TakeSnapshot, mock.Anything, mock.Anything).Return(nil)
			env.OnActivity(a.SendSnapshots, mock.Anything, mock.Anything).Return(contract.SendReport{Full: true, Bytes: 42}, tc.sendErr)
			env.OnActivity(a.HoldBase, mock.Anything, mock.Anything).Return(nil)
			var notified []contract.NotifyEvent
			env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, ev contract.NotifyEvent) error {
				notified = append(notified, ev)
				return nil
			}).Maybe()
			env.ExecuteWorkflow(Replicate, ReplicateInput{Source: "tank/data", Target: "b", TargetDataset: "bk/data"})
			if (env.GetWorkflowError() == nil) != (tc.sendErr == nil) {
				t.Fatalf("workflow error %v", env.GetWorkflowError())
			}
			if len(rec) != 1 {
				t.Fatalf("recorded %d outcomes, want 1: %+v", len(rec), rec)
			}
			o := rec[0]
			if o.Outcome != tc.outcome || o.Job.Kind != "replicate" || strings.Join(o.Job.Datasets, ",") != "tank/data" || o.Job.Target != "b" || o.Bytes != tc.bytes {
				t.Errorf("outcome %+v", o)
			}
			// A failure is reported through the notifiers, with its cause.
			switch {
			case tc.sendErr == nil && len(notified) != 0:
				t.Errorf("a success notified: %+v", notified)
			case tc.sendErr != nil && (len(notified) != 1 || notified[0].Subject != "replicate tank/data to b failed" ||
				!strings.Contains(notified[0].Body, "pool does not exist") || notified[0].Fields["dataset"] != "tank/data"):
				t.Errorf("notifications %+v", notified)
			}
			v, err := env.QueryWorkflow("__temporal_workflow_metadata")
			if err != nil {
				t.Fatal(err)
			}
			var md sdkpb.WorkflowMetadata
			if err := v.Get(&md); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.details {
				if !strings.Contains(md.GetCurrentDetails(), want) {
					t.Errorf("current details lack %q:\n%s", want, md.GetCurrentDetails())
				}
			}
		})
	}
}
