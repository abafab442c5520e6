package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"zcloud/activities"
	"zcloud/cli"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workerapp"
	"zcloud/workflows"
)

// zcloudCLI runs the zcloud binary with the env's config.
func (e *env) zcloudCLI(args ...string) (string, error) {
	e.t.Helper()
	bin, err := zcloudBin()
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := exec.Command(bin, append([]string{"--config", e.cfgPath}, args...)...).CombinedOutput()
	return string(out), err
}

// A step that keeps failing with a retryable error ends the run after its
// retry policy's attempts, on a real server: the final error and `zcloud
// status` keep the last attempt's cause and say the retries are spent.
// The failure is a FAKE (CheckTargetAt replaced by one that always fails
// as a flaky target would), since no real component fails a fixed number of
// times on demand; the check step's policy (3 attempts, from 2 s) keeps it
// short. The count comes from the history, not from a clock.
func TestTransientFailureEndsAfterItsAttemptsWithTheCause(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	w := workerapp.New(e.client, e.cfg, activities.New(e.cfg, zap.NewNop()))
	w.RegisterActivityWithOptions(func(ctx context.Context, req contract.CheckRequest) (contract.TargetCheck, error) {
		n := calls.Add(1)
		return contract.TargetCheck{}, fmt.Errorf("target busy: fake flaky check, call %d", n)
	}, activity.RegisterOptions{Name: contract.CheckTargetAt, DisableAlreadyRegisteredCheck: true})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	in := workflows.ReplicateInput{Source: e.src.Pool.String() + "/data", Target: "backup", TargetDataset: e.dst.Pool.String() + "/data"}
	id := workflows.ReplicateWorkflowID(in.Source, in.Target, in.TargetDataset)
	run := e.startAs(id, workflows.ReplicateName, in)
	err := run.Get(e.ctx(2*time.Minute), nil)
	if err == nil {
		t.Fatal("the replication succeeded")
	}
	if !strings.Contains(err.Error(), "check target: target busy: fake flaky check, call 3") || !strings.Contains(err.Error(), "gave up: every attempt failed") {
		t.Errorf("final error %q: want the last attempt's cause and that retries are spent", err)
	}
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() {
		t.Errorf("final error is retryable: %v", err)
	}
	// Attempts, from the history: the check's started event records its
	// last attempt.
	last := int32(0)
	checks := map[int64]bool{} // scheduled event ids of the check
	it := e.client.GetWorkflowHistory(e.ctx(time.Minute), id, run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == contract.CheckTargetAt {
			checks[ev.GetEventId()] = true
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && checks[a.GetScheduledEventId()] {
			last = a.GetAttempt()
		}
	}
	if last != 3 || calls.Load() != 3 {
		t.Errorf("check ran %d times (history's last attempt %d), want the policy's 3", calls.Load(), last)
	}
	out, _ := e.zcloudCLI("status", id)
	t.Logf("zcloud status %s:\n%s", id, out)
	if !strings.Contains(out, "  error: check target: target busy: fake flaky check, call 3 (gave up: every attempt failed)\n") {
		t.Errorf("zcloud status %s:\n%s", id, out)
	}
}

// `zcloud cancel ID --reason` mid-send: the run ends cancelled, and `zcloud
// status ID` says who cancelled it, why, and the step it stopped at.
func TestCancelKeepsWhoAndWhy(t *testing.T) {
	e := newEnv(t)
	e.startWorker(e.cfg)
	src := e.src.Pool.String() + "/data"
	testenv.MustZFS(t, "zfs", "create", src)
	writeTree(t, "/"+src, 7, 8, 256<<10)
	in := workflows.ReplicateInput{Source: src, Target: "backup", TargetDataset: e.dst.Pool.String() + "/data"}
	id := workflows.ReplicateWorkflowID(in.Source, in.Target, in.TargetDataset)
	e.holdAt("send", 64<<10)
	run := e.startAs(id, workflows.ReplicateName, in)
	e.waitHeld("send")
	if out, err := e.zcloudCLI("cancel", id, "--reason", "maintenance window", "--by", "ops@test"); err != nil {
		t.Fatalf("zcloud cancel: %v\n%s", err, out)
	}
	err := run.Get(e.ctx(2*time.Minute), nil)
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("want cancelled, got %v", err)
	}
	out, err := e.zcloudCLI("status", id)
	if err != nil {
		t.Fatalf("zcloud status: %v\n%s", err, out)
	}
	t.Logf("zcloud status %s:\n%s", id, out)
	if !strings.Contains(out, "cause: cancelled by ops@test: maintenance window (at send)") {
		t.Errorf("zcloud status lacks who, why and where:\n%s", out)
	}
	// The overview's job keeps the same cause.
	out, err = e.zcloudCLI("status", "--json")
	if err != nil {
		t.Fatalf("zcloud status --json: %v\n%s", err, out)
	}
	var ov cli.Overview
	if err := json.Unmarshal([]byte(out), &ov); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range ov.Datasets {
		for _, c := range d.Copies {
			if j := c.Job; j != nil && j.ID == id {
				found = true
				if j.Cause != "cancelled by ops@test: maintenance window (at send)" || j.LastFailure.IsZero() {
					t.Errorf("overview job %+v", j)
				}
			}
		}
	}
	if !found {
		t.Errorf("overview has no job %s:\n%s", id, out)
	}
}
