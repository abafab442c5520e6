package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.temporal.io/api/enums/v1"

	"zcloud/activities"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// The 4-modifications-per-volume-per-24-h rule is zcloud's own (moto
// allows any number): four grows go through, the fifth waits on a durable
// timer instead of failing or modifying.
func TestPoolGrowInPlaceFifthModificationWaitsOnATimer(t *testing.T) {
	pe := newPoolEnv(t, poolOpts{vdevs: 1, width: 2, redundancy: "mirror", sizeGiB: 1})
	pe.startWorker(pe.cfg)
	pe.run(workflows.PoolCreateName, workflows.PoolInput{Pool: pe.pool}, 3*time.Minute)
	pe.importPool()
	testenv.MustZFS(t, "zfs", "create", pe.pool+"/data")
	dir := "/" + pe.pool + "/data"
	writeTree(t, dir, 5, 8, 1<<20)
	sums := treeSums(t, dir)
	first := time.Now()
	size := poolSize(t, pe.pool)
	for gib := int64(2); gib <= 5; gib++ {
		begin := time.Now()
		res := pe.run(workflows.PoolGrowName, workflows.PoolGrowInput{Pool: pe.pool, Mode: workflows.GrowInPlace, SizeGiB: gib}, 2*time.Minute)
		now := poolSize(t, pe.pool)
		t.Logf("grow in place to %d GiB: pool %d MiB -> %d MiB in %.1fs", gib, size>>20, now>>20, time.Since(begin).Seconds())
		if now <= size || res.SizeAfter != now {
			t.Fatalf("grow to %d GiB: pool size %d -> %d (workflow says %d)", gib, size, now, res.SizeAfter)
		}
		size = now
		for _, v := range pe.seam.poolVolumes(pe.pool) {
			if aws.ToInt32(v.Size) != int32(gib) {
				t.Fatalf("volume %s is %d GiB after growing to %d", aws.ToString(v.VolumeId), aws.ToInt32(v.Size), gib)
			}
			if n := len(strings.Fields(tagOf(v, activities.TagModifications))); n != int(gib-1) {
				t.Fatalf("volume %s records %d modifications, want %d", aws.ToString(v.VolumeId), n, gib-1)
			}
		}
	}
	pe.checkHealthy()

	// The fifth: within 24 h of the first, so it must wait.
	run := pe.start(workflows.PoolGrowName, workflows.PoolGrowInput{Pool: pe.pool, Mode: workflows.GrowInPlace, SizeGiB: 6})
	t.Cleanup(func() { pe.client.TerminateWorkflow(pe.ctx(10*time.Second), run.GetID(), run.GetRunID(), "test over") })
	var st workflows.PoolStatus
	waitFor(t, time.Minute, "the fifth grow to wait", func() bool {
		s, err := pe.status(run)
		st = s
		return err == nil && !s.WaitingUntil.IsZero()
	})
	wantWake := first.Add(24 * time.Hour)
	if d := st.WaitingUntil.Sub(wantWake); d < -time.Minute || d > time.Minute {
		t.Fatalf("waiting until %v, want about %v (first modification + 24 h)", st.WaitingUntil, wantWake)
	}
	if !strings.Contains(st.Phase, "4 per volume per 24 h") {
		t.Fatalf("phase %q", st.Phase)
	}
	desc, err := pe.client.DescribeWorkflowExecution(pe.ctx(10*time.Second), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.GetWorkflowExecutionInfo().GetStatus(); s != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("fifth grow is %s, want running (waiting)", s)
	}
	timer := false
	it := pe.client.GetWorkflowHistory(pe.ctx(10*time.Second), run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetTimerStartedEventAttributes(); a != nil && a.GetStartToFireTimeout().AsDuration() > 23*time.Hour {
			timer = true
			t.Logf("durable timer %s started for %s", a.GetTimerId(), a.GetStartToFireTimeout().AsDuration().Round(time.Second))
		}
	}
	if !timer {
		t.Fatal("no durable timer of ~24 h in the history")
	}
	for _, v := range pe.seam.poolVolumes(pe.pool) {
		if aws.ToInt32(v.Size) != 5 {
			t.Fatalf("volume %s modified to %d GiB despite the limit", aws.ToString(v.VolumeId), aws.ToInt32(v.Size))
		}
	}
	if n := countActions(pe.seam.eventList(), "ModifyVolume"); n != 8 {
		t.Fatalf("%d ModifyVolume calls, want 4 grows × 2 volumes", n)
	}
	after := treeSums(t, dir)
	for k, v := range sums {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
	// A scrub of the grown pool is clean.
	sc := pe.run(workflows.PoolScrubName, workflows.PoolInput{Pool: pe.pool}, time.Minute)
	if sc.Scrub == nil || !sc.Scrub.Clean() {
		t.Fatalf("scrub: %+v", sc.Scrub)
	}
	t.Logf("%s", sc.Scrub.Summary())
}

func countActions(evs []ebsEvent, action string) int {
	n := 0
	for _, e := range evs {
		if e.Action == action {
			n++
		}
	}
	return n
}

// A scrub that finds (and repairs) corruption stops a rolling replace
// before any volume is created.
func TestPoolRollingReplaceStopsWhenTheScrubFindsErrors(t *testing.T) {
	pe := newPoolEnv(t, poolOpts{vdevs: 2, width: 3, redundancy: "raidz1", sizeGiB: 1})
	pe.startWorker(pe.cfg)
	pe.run(workflows.PoolCreateName, workflows.PoolInput{Pool: pe.pool}, 3*time.Minute)
	old := pe.checkPoolVolumes(2, 3, 1)
	pe.importPool()
	testenv.MustZFS(t, "zfs", "create", pe.pool+"/data")
	writeTree(t, "/"+pe.pool+"/data", 9, 40, 4<<20)
	testenv.MustZFS(t, "sync")
	// Overwrite 32 MiB of one device past the front labels (the first 4
	// MiB) and well before the back labels.
	victim := pe.seam.file(old["v0/d1"])
	testenv.MustZFS(t, "dd", "if=/dev/urandom", "of="+victim, "bs=1M", "seek=4", "count=32", "conv=notrunc")
	created := len(pe.seam.createdVolumes())

	run := pe.start(workflows.PoolGrowName, workflows.PoolGrowInput{Pool: pe.pool, Mode: workflows.GrowRollingReplace, SizeGiB: 2})
	err := run.Get(pe.ctx(3*time.Minute), nil)
	if err == nil || !strings.Contains(err.Error(), "before any device is touched") {
		t.Fatalf("grow after corruption: %v", err)
	}
	st, _ := pe.status(run)
	if st.Scrub == nil || st.Scrub.Clean() {
		t.Fatalf("scrub report %+v", st.Scrub)
	}
	t.Logf("stopped: %s", st.Error)
	if n := len(pe.seam.createdVolumes()); n != created {
		t.Fatalf("%d volumes created after the dirty scrub", n-created)
	}
	if n := countActions(pe.seam.eventList(), "DetachVolume") + countActions(pe.seam.eventList(), "DeleteVolume"); n != 0 {
		t.Fatalf("%d detach/delete calls", n)
	}
	if n := countActions(pe.seam.eventList(), "AttachVolume"); n != 6 {
		t.Fatalf("%d attach calls, want the 6 of create only", n)
	}
	pe.checkPoolVolumes(2, 3, 1)
	for _, p := range st.Done {
		if p != "pool/scrub" {
			t.Fatalf("step %s done after a dirty scrub", p)
		}
	}
}
