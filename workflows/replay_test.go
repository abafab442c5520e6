package workflows

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/workflow"
)

// Histories recorded on a real Temporal dev server by the e2e policy tests
// (ZCLOUD_RECORD_HISTORY=dir go test ./e2e -run TestPolicy): a rejected and
// an approved prune (with their approve-prune updates), a tick that took a
// snapshot and started a prune, and a tick that found a prune still running.
// A change to the workflows that would break running executions fails here;
// put such a change behind workflow.GetVersion.
func TestReplayRecordedPolicyHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("want the recorded histories, got %v (%v)", files, err)
	}
	r := newReplayer()
	Register(r)
	for _, f := range files {
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}

// The replay test can fail: a PrunePolicy that takes a different path than
// the recorded one (here: waits on a timer before planning) is refused.
func TestReplayDetectsANondeterministicChange(t *testing.T) {
	if _, err := os.Stat("testdata/histories/prune-approved.json"); err != nil {
		t.Fatal(err)
	}
	changed := func(ctx workflow.Context, in PolicyInput) (PruneStatus, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return PruneStatus{}, err
		}
		return PrunePolicy(ctx, in)
	}
	r := newReplayer()
	r.RegisterWorkflowWithOptions(changed, workflow.RegisterOptions{Name: PrunePolicyName})
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/histories/prune-approved.json"); err == nil {
		t.Fatal("a nondeterministic change replayed without error")
	}
}
