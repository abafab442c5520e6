package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"zcloud/workflows"
)

// replayHistory fetches a finished workflow's history and replays it against
// the current workflow code: a non-deterministic change fails here. With
// ZCLOUD_RECORD_HISTORY=DIR it is also saved as DIR/<name>.json for the
// replay tests in package workflows.
func (e *env) replayHistory(id, name string) {
	e.t.Helper()
	replayAndRecord(e.t, e.client, id, "", name)
}

// replayAndRecord is replayHistory for tests without an env: run "" is the
// latest run of id.
func replayAndRecord(t *testing.T, cl client.Client, id, run, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := cl.GetWorkflowHistory(ctx, id, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &history.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	r := newReplayer(t)
	for _, reg := range workflows.All() {
		r.RegisterWorkflowWithOptions(reg.Fn, workflowRegisterOptions(reg.Name))
	}
	// The workflow's own ID, not the replayer's "ReplayId": Session derives
	// its children's IDs from it.
	exec := worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}}
	if len(h.Events) > 0 {
		exec.OriginalExecution.RunID = h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId()
	}
	if err := r.ReplayWorkflowHistoryWithOptions(nil, h, exec); err != nil {
		t.Fatalf("replay of %s: %v", id, err)
	}
	if dir := os.Getenv("ZCLOUD_RECORD_HISTORY"); dir != "" {
		b, err := protojson.MarshalOptions{Indent: " "}.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
