package workflows

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"zcloud/activities"
	"zcloud/contract"
)

func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterActivity(&activities.Activities{})
	for _, r := range All() {
		env.RegisterWorkflowWithOptions(r.Fn, workflow.RegisterOptions{Name: r.Name})
	}
	return env
}

func TestReplicateRunsStepsInOrderAndHoldsTheNewBase(t *testing.T) {
	env := newEnv(t)
	var a *activities.Activities
	var order []string
	env.OnActivity(a.CheckTargetAt, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.CheckRequest) (contract.TargetCheck, error) {
		// The worker checks the whole request before connecting.
		if r.Target != "b" || r.Source != "tank/data" || r.TargetDataset != "bk/data" {
			t.Errorf("check request %+v", r)
		}
		order = append(order, "check")
		return contract.TargetCheck{Target: "b"}, nil
	})
	env.OnActivity(a.TakeSnapshot, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.SnapshotRequest) error {
		order = append(order, "snapshot "+r.Snapshot.Dataset().String())
		return nil
	})
	env.OnActivity(a.SendSnapshots, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.SendRequest) (contract.SendReport, error) {
		order = append(order, "send "+r.TargetDataset.String())
		return contract.SendReport{Full: true, Bytes: 42, To: r.Snapshot.String()}, nil
	})
	env.OnActivity(a.HoldBase, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.HoldRequest) error {
		order = append(order, "hold "+r.Tag)
		return nil
	})
	env.ExecuteWorkflow(Replicate, ReplicateInput{Source: "tank/data", Target: "b", TargetDataset: "bk/data"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	want := []string{"check", "snapshot tank/data", "send bk/data", "hold zcloud-b"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
	var res ReplicateResult
	if err := env.GetWorkflowResult(&res); err != nil || res.Send.Bytes != 42 {
		t.Fatalf("result %+v, %v", res, err)
	}
}

func TestReplicateRefusesHostileNamesWithoutRunningAnything(t *testing.T) {
	for _, in := range []ReplicateInput{
		{Source: "tank/a;rm -rf /", Target: "b", TargetDataset: "bk/a"},
		{Source: "tank/a", Target: "b", TargetDataset: "$(id)"},
		{Source: "-tank", Target: "b", TargetDataset: "bk/a"},
		{Source: "tank/a", Target: "bad name", TargetDataset: "bk/a"},                    // the hold tag zcloud-bad name
		{Source: "tank/a", Target: "b", TargetDataset: "bk/" + strings.Repeat("d", 240)}, // too long with @zcloud_<time>
	} {
		env := newEnv(t)
		env.ExecuteWorkflow(Replicate, in) // no activity is mocked: any call fails the test
		err := env.GetWorkflowError()
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || ae.Type() != contract.ErrTypeInvalidName || !ae.NonRetryable() {
			t.Errorf("%+v: got %v, want a non-retryable InvalidName error", in, err)
		}
	}
}

func TestReplicateSurfacesTheActivityErrorOnce(t *testing.T) {
	env := newEnv(t)
	var a *activities.Activities
	env.OnActivity(a.CheckTargetAt, mock.Anything, mock.Anything).Return(contract.TargetCheck{}, temporal.NewNonRetryableApplicationError("target b unreachable: connection refused", contract.ErrTypeUnreachable, nil))
	env.ExecuteWorkflow(Replicate, ReplicateInput{Source: "tank/data", Target: "b", TargetDataset: "bk/data"})
	var ae *temporal.ApplicationError
	err := env.GetWorkflowError()
	if !errors.As(err, &ae) || ae.Type() != contract.ErrTypeUnreachable {
		t.Fatalf("got %v", err)
	}
	if ae.Message() != "check target: target b unreachable: connection refused" {
		t.Fatalf("message %q", ae.Message())
	}
}

func TestRecordedHistoriesReplay(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata")
	}
	for _, f := range files {
		r := newReplayer()
		for _, reg := range All() {
			r.RegisterWorkflowWithOptions(reg.Fn, workflow.RegisterOptions{Name: reg.Name})
		}
		if _, err := replayRecorded(t, r, filepath.Base(f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
