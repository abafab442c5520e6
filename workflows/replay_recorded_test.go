package workflows

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Histories recorded on a real Temporal dev server by the e2e tests with
// ZCLOUD_RECORD_HISTORY=dir (see e2e/replay_test.go):
//
//	TestSessionLaunchesUnlocksReplicatesAndTerminates  session-nightly
//	TestArchiveFullAndIncrementalsRestoredFromTheArchiveAlone
//	    archive-full, archive-incremental, archive-skip, restore-glacier
//	TestArchiveCLISchedulesStatusAndPlan                archive-tick
//	TestPoolCreateGrowByRollingReplaceAndDestroy        pool-create, pool-grow-rolling-replace
//	TestSessionAfterRollingGrowAttachesThePoolsCurrentVolumes
//	    session-mounts-pool, pool-grow-hands-back
//	TestRestoreCancelledWhileWaitingForRetrievalEndsCancelled
//	    restore-cancelled-waiting (both markers of TestRecordedVersionMarkers)
//
// Each is replayed against the current workflow code; a change that would
// break running executions fails here: put it behind workflow.GetVersion.
var recordedHistories = []struct {
	file, workflow string
	// changed is the workflow with one extra step (a timer) at its start:
	// the replay of the recorded history must refuse it.
	changed any
}{
	{"session-nightly.json", SessionName, func(ctx workflow.Context, in SessionInput) (SessionResult, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return SessionResult{}, err
		}
		return Session(ctx, in)
	}},
	{"archive-full.json", ArchiveName, changedArchive},
	{"archive-incremental.json", ArchiveName, changedArchive},
	{"archive-skip.json", ArchiveName, changedArchive},
	{"archive-tick.json", ArchiveTickName, func(ctx workflow.Context, in ArchiveInput) (string, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return "", err
		}
		return ArchiveTick(ctx, in)
	}},
	{"restore-glacier.json", RestoreName, func(ctx workflow.Context, in RestoreInput) (RestoreStatus, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return RestoreStatus{}, err
		}
		return Restore(ctx, in)
	}},
	{"restore-cancelled-waiting.json", RestoreName, func(ctx workflow.Context, in RestoreInput) (RestoreStatus, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return RestoreStatus{}, err
		}
		return Restore(ctx, in)
	}},
	{"pool-create.json", PoolCreateName, func(ctx workflow.Context, in PoolInput) (PoolResult, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return PoolResult{}, err
		}
		return PoolCreate(ctx, in)
	}},
	{"pool-grow-rolling-replace.json", PoolGrowName, changedGrow},
	{"pool-grow-hands-back.json", PoolGrowName, changedGrow},
	{"session-mounts-pool.json", SessionName, func(ctx workflow.Context, in SessionInput) (SessionResult, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return SessionResult{}, err
		}
		return Session(ctx, in)
	}},
}

func changedGrow(ctx workflow.Context, in PoolGrowInput) (PoolResult, error) {
	if err := workflow.Sleep(ctx, time.Minute); err != nil {
		return PoolResult{}, err
	}
	return PoolGrow(ctx, in)
}

func changedArchive(ctx workflow.Context, in ArchiveInput) (ArchiveStatus, error) {
	if err := workflow.Sleep(ctx, time.Minute); err != nil {
		return ArchiveStatus{}, err
	}
	return Archive(ctx, in)
}

// replayRecorded replays testdata/file under the workflow ID it ran with
// (from its started event; the replayer's default "ReplayId" would change
// the IDs Session gives its children) and returns the recorded type.
func replayRecorded(t *testing.T, r worker.WorkflowReplayer, file string) (string, error) {
	t.Helper()
	f, err := os.Open("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil || len(h.GetEvents()) == 0 {
		t.Fatalf("%s: %v (%d events)", file, err, len(h.GetEvents()))
	}
	start := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
	if start.GetWorkflowId() == "" {
		t.Fatalf("%s: the first event is no workflow start with an ID: %v", file, h.Events[0])
	}
	exec := workflow.Execution{ID: start.GetWorkflowId(), RunID: start.GetOriginalExecutionRunId()}
	return start.GetWorkflowType().GetName(),
		r.ReplayWorkflowHistoryWithOptions(nil, h, worker.ReplayWorkflowHistoryOptions{OriginalExecution: exec})
}

func TestReplayRecordedSessionArchiveRestorePoolHistories(t *testing.T) {
	for _, c := range recordedHistories {
		t.Run(c.file, func(t *testing.T) {
			r := newReplayer()
			Register(r)
			typ, err := replayRecorded(t, r, c.file)
			if typ != c.workflow {
				t.Fatalf("recorded workflow type %q, want %q", typ, c.workflow)
			}
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

// The replays above can fail: each workflow with an extra timer at its
// start is refused as non-deterministic against its recorded history.
func TestReplayRecordedHistoriesRefuseAChangedWorkflow(t *testing.T) {
	for _, c := range recordedHistories {
		t.Run(c.file, func(t *testing.T) {
			r := newReplayer()
			for _, reg := range All() {
				if reg.Name != c.workflow {
					r.RegisterWorkflowWithOptions(reg.Fn, workflow.RegisterOptions{Name: reg.Name})
				}
			}
			r.RegisterWorkflowWithOptions(c.changed, workflow.RegisterOptions{Name: c.workflow})
			_, err := replayRecorded(t, r, c.file)
			if err == nil {
				t.Fatal("a non-deterministic change replayed without error")
			}
			if !strings.Contains(err.Error(), "TMPRL1100") {
				t.Fatalf("want a non-determinism error (TMPRL1100), got %v", err)
			}
		})
	}
}

// The GetVersion changes have recorded histories that take their new
// branch: each marker is in a history the replay tests above replay.
func TestRecordedVersionMarkers(t *testing.T) {
	for _, c := range []struct{ file, change string }{
		{"restore-cancelled-waiting.json", retrievalPollRetries},
		{"restore-cancelled-waiting.json", versionCancelStays},
		{"session-mounts-pool.json", sessionHoldsPoolChange},
		{"pool-grow-hands-back.json", poolHandBackChange},
	} {
		f, err := os.Open("testdata/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range h.GetEvents() {
			m := ev.GetMarkerRecordedEventAttributes()
			if m == nil || m.GetMarkerName() != "Version" {
				continue
			}
			var id string
			var version workflow.Version
			if err := converter.GetDefaultDataConverter().FromPayloads(m.GetDetails()["change-id"], &id); err != nil {
				t.Fatal(err)
			}
			if err := converter.GetDefaultDataConverter().FromPayloads(m.GetDetails()["version"], &version); err != nil {
				t.Fatal(err)
			}
			found = found || id == c.change && version == 1
		}
		if !found {
			t.Errorf("%s has no version-1 marker of %q", c.file, c.change)
		}
	}
}
