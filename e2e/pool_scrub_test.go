package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// zpoolScrubs counts the `zpool scrub` commands in the pool's own
// history (zpool history): every scrub anyone started on it.
func zpoolScrubs(t *testing.T, pool string) int {
	t.Helper()
	out, err := exec.Command("zpool", "history", pool).CombinedOutput()
	if err != nil {
		t.Fatalf("zpool history %s: %v\n%s", pool, err, out)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, " zpool scrub ") {
			n++
		}
	}
	return n
}

// triggerScrubSchedule fires the pool's scrub Schedule now and returns the
// run it started (the id is the Schedule's plus the time).
func (pe *poolEnv) triggerScrubSchedule(ctx context.Context) client.WorkflowRun {
	pe.t.Helper()
	h := pe.client.ScheduleClient().GetHandle(ctx, workflows.PoolScrubScheduleID(pe.pool))
	before, err := h.Describe(ctx)
	if err != nil {
		pe.t.Fatal(err)
	}
	n := len(before.Info.RecentActions)
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enums.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}); err != nil {
		pe.t.Fatal(err)
	}
	var id, runID string
	waitFor(pe.t, time.Minute, "the Schedule to start a run", func() bool {
		d, err := h.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) <= n {
			return false
		}
		r := d.Info.RecentActions[len(d.Info.RecentActions)-1].StartWorkflowResult
		id, runID = r.WorkflowID, r.FirstExecutionRunID
		return true
	})
	if !strings.HasPrefix(id, workflows.PoolScrubScheduleID(pe.pool)+"-") {
		pe.t.Fatalf("the Schedule started %s", id)
	}
	return pe.client.GetWorkflow(ctx, id, runID)
}

// A scheduled scrub (PoolScrub started by the Temporal Schedule under its
// own id) while a rolling replace, started by the CLI, is held midway
// (device node of its first new volume not there yet): the scrub does
// nothing, says "skipped: grow in progress", and no `zpool scrub` reaches
// the pool but the grow's own. After the grow, the next scheduled scrub
// runs, as pool/NAME.
func TestPoolScheduledScrubSkipsWhileAGrowRuns(t *testing.T) {
	pe := newPoolEnv(t, poolOpts{vdevs: 1, width: 2, redundancy: "mirror", sizeGiB: 1, scrubSchedule: "0 3 1 1 *"})
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	zc := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--config", pe.cfgPath)...).CombinedOutput()
		return string(out), err
	}
	pe.startWorker(pe.cfg)
	ctx := pe.ctx(10 * time.Minute)
	t.Cleanup(func() {
		pe.client.ScheduleClient().GetHandle(context.Background(), workflows.PoolScrubScheduleID(pe.pool)).Delete(context.Background())
		pe.client.TerminateWorkflow(context.Background(), workflows.PoolWorkflowID(pe.pool), "", "test over")
	})
	pe.run(workflows.PoolCreateName, workflows.PoolInput{Pool: pe.pool}, 3*time.Minute)
	pe.importPool()
	testenv.MustZFS(t, "zfs", "create", pe.pool+"/data")
	dir := "/" + pe.pool + "/data"
	writeTree(t, dir, 31, 6, 1<<20)
	sums := treeSums(t, dir)
	if out, err := zc("pool", "scrub", pe.pool, "--schedule"); err != nil || !strings.Contains(out, "created schedule "+workflows.PoolScrubScheduleID(pe.pool)) {
		t.Fatalf("scrub --schedule: %v\n%s", err, out)
	}

	// The grow, as the CLI starts it (id pool/NAME), held at its first attach.
	pe.seam.holdNext(1)
	out, err := zc("pool", "grow", pe.pool, "--size", "2", "--mode", "rolling-replace", "--no-wait")
	if err != nil {
		t.Fatalf("grow: %v\n%s", err, out)
	}
	grow := pe.client.GetWorkflow(ctx, workflows.PoolWorkflowID(pe.pool), "")
	pollUntil(t, 2*time.Minute, "the grow held at its attach step", func() bool {
		return len(pe.seam.heldVolumes()) == 1 && slices.Contains(pe.pendingActivities(grow), "PoolAttachVolume")
	})
	scrubsDuringGrow := zpoolScrubs(t, pe.pool) // the grow's own scrub first
	if scrubsDuringGrow < 1 {
		t.Fatalf("the grow's pre-scrub is not in zpool history")
	}

	// The Schedule fires during the grow.
	skipped := pe.triggerScrubSchedule(ctx)
	var res workflows.PoolResult
	if err := skipped.Get(ctx, &res); err != nil {
		t.Fatalf("scheduled scrub during the grow: %v", err)
	}
	t.Logf("scheduled scrub %s during the grow: %q (holder %+v)", skipped.GetID(), res.Skipped, res.Holder)
	if res.Skipped != "skipped: grow in progress" || res.Scrub != nil || res.Holder == nil || res.Holder.RunID != grow.GetRunID() {
		t.Fatalf("scheduled scrub during the grow: %+v", res)
	}
	if n := zpoolScrubs(t, pe.pool); n != scrubsDuringGrow {
		t.Fatalf("zpool scrub ran %d time(s) during the grow", n-scrubsDuringGrow)
	}
	if st, err := pe.status(skipped); err != nil || !strings.Contains(st.Phase, "skipped: grow in progress") {
		t.Fatalf("status of the skipped scrub: %+v %v", st, err)
	}
	// The grow is still running, untouched.
	if d, err := pe.client.DescribeWorkflowExecution(ctx, grow.GetID(), grow.GetRunID()); err != nil ||
		d.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("grow after the skipped scrub: %v %v", d.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	// An on-demand scrub is refused, naming the grow.
	if out, err := zc("pool", "scrub", pe.pool, "--no-wait"); err == nil || !strings.Contains(out, "PoolGrow is running on pool "+pe.pool) {
		t.Fatalf("on-demand scrub during the grow: %v\n%s", err, out)
	}

	// Let the grow go on and finish.
	pe.seam.release(pe.seam.heldVolumes()[0])
	var gr workflows.PoolResult
	if err := grow.Get(ctx, &gr); err != nil {
		t.Fatalf("grow: %v", err)
	}
	if n := zpoolScrubs(t, pe.pool); n != scrubsDuringGrow {
		t.Fatalf("zpool scrub ran %d time(s) during the grow", n-scrubsDuringGrow)
	}

	// Now the Schedule's scrub runs, under the pool's operation id.
	ran := pe.triggerScrubSchedule(ctx)
	res = workflows.PoolResult{}
	if err := ran.Get(ctx, &res); err != nil {
		t.Fatalf("scheduled scrub after the grow: %v", err)
	}
	if res.Skipped != "" || res.Scrub == nil || !res.Scrub.Clean() {
		t.Fatalf("scheduled scrub after the grow: %+v", res)
	}
	t.Logf("scheduled scrub %s after the grow: %s", ran.GetID(), res.Scrub.Summary())
	if n := zpoolScrubs(t, pe.pool); n != scrubsDuringGrow+1 {
		t.Fatalf("%d zpool scrub(s) after the grow, want 1", n-scrubsDuringGrow)
	}
	d, err := pe.client.DescribeWorkflowExecution(ctx, workflows.PoolWorkflowID(pe.pool), "")
	if err != nil || d.GetWorkflowExecutionInfo().GetType().GetName() != workflows.PoolScrubName ||
		d.GetWorkflowExecutionInfo().GetParentExecution().GetWorkflowId() != ran.GetID() {
		t.Fatalf("latest %s: %v %v", workflows.PoolWorkflowID(pe.pool), d.GetWorkflowExecutionInfo(), err)
	}
	after := treeSums(t, dir)
	for k, v := range sums {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
	pe.replayHistory(skipped.GetID(), "pool-scrub-skipped")
	pe.replayHistory(ran.GetID(), "pool-scrub-scheduled")
}
