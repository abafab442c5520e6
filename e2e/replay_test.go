package e2e

import (
	"os"
	"path/filepath"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"zcloud/workflows"
)

// replayHistory fetches a finished workflow's history and replays it against
// the current workflow code: a non-deterministic change fails here. With
// ZCLOUD_RECORD_HISTORY=DIR it is also saved as DIR/<name>.json for the
// replay tests in package workflows.
func (e *env) replayHistory(id, name string) {
	e.t.Helper()
	it := e.client.GetWorkflowHistory(e.ctx(30e9), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &history.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	r := worker.NewWorkflowReplayer()
	for _, reg := range workflows.All() {
		r.RegisterWorkflowWithOptions(reg.Fn, workflowRegisterOptions(reg.Name))
	}
	if err := r.ReplayWorkflowHistory(nil, h); err != nil {
		e.t.Fatalf("replay of %s: %v", id, err)
	}
	if dir := os.Getenv("ZCLOUD_RECORD_HISTORY"); dir != "" {
		b, err := protojson.MarshalOptions{Indent: " "}.Marshal(h)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}
