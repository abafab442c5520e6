package e2e

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// pollUntil polls cond every 20 ms until it holds or d passes.
func pollUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPoolRollingReplaceSurvivesWorkerKillsDuringAttachAndResilverWait(t *testing.T) {
	pe := newPoolEnv(t, poolOpts{vdevs: 2, width: 3, redundancy: "raidz1", sizeGiB: 1, parallel: 1, heartbeat: "3s"})
	w := pe.startWorkerProcess()
	pe.run(workflows.PoolCreateName, workflows.PoolInput{Pool: pe.pool}, 3*time.Minute)
	old := pe.checkPoolVolumes(2, 3, 1)
	pe.importPool()
	testenv.MustZFS(t, "zfs", "create", pe.pool+"/data")
	dir := "/" + pe.pool + "/data"
	writeTree(t, dir, 23, 30, 8<<20)
	sums := treeSums(t, dir)
	sizeBefore := poolSize(t, pe.pool)

	// The first volume the grow attaches shows no device node until
	// released; the first resilver wait holds until the test's end.
	pe.seam.holdNext(1)
	pe.holdAt("resilver-wait", 0)
	begin := time.Now()
	run := pe.start(workflows.PoolGrowName, workflows.PoolGrowInput{Pool: pe.pool, Mode: workflows.GrowRollingReplace, SizeGiB: 2})
	pollUntil(t, 2*time.Minute, "the attach step with the volume attached in moto", func() bool {
		return len(pe.seam.heldVolumes()) == 1 && slices.Contains(pe.pendingActivities(run), "PoolAttachVolume")
	})
	held := pe.seam.heldVolumes()[0]
	kill := func(label string) {
		if err := syscall.Kill(-w.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		w.Wait()
		t.Logf("worker killed during %s at +%.1fs", label, time.Since(begin).Seconds())
		w = pe.startWorkerProcess()
	}
	kill("attach of " + held)
	// Let the retry (on the new worker, after the 3 s heartbeat timeout)
	// find the volume attached, then let its device appear.
	pollUntil(t, time.Minute, "the attach retried", func() bool { return pe.pendingAttempt(run, "PoolAttachVolume") >= 2 })
	pe.seam.release(held)

	// Kill again while the workflow waits for a resilver.
	pe.waitHeld("resilver-wait")
	st, _ := pe.status(run)
	kill("resilver wait (" + joinIDs(st.Current) + ")")

	var res workflows.PoolResult
	if err := run.Get(pe.ctx(5*time.Minute), &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("PoolGrow with two worker kills: %.1fs", time.Since(begin).Seconds())
	att := pe.activityAttempts(run)
	if att["PoolAttachVolume"] < 2 || att["PoolWaitResilver"] < 2 {
		t.Fatalf("attempts %v: the kills did not interrupt attach and resilver wait", att)
	}
	repl := pe.checkPoolVolumes(2, 3, 2)
	pe.checkDeletesAfterResilver(old, repl)
	created := pe.seam.createdVolumes()
	if len(created) != 12 {
		t.Fatalf("%d volumes created, want 6 + 6 (none twice, none leaked): %v", len(created), created)
	}
	for _, v := range created {
		if n := pe.seam.attachCount(v); n != 1 {
			t.Errorf("%s attached %d times", v, n)
		}
	}
	if n := pe.seam.attachCount(held); n != 1 {
		t.Fatalf("held volume %s attached %d times", held, n)
	}
	pe.checkHealthy()
	if after := poolSize(t, pe.pool); after <= sizeBefore*3/2 {
		t.Fatalf("pool size %d -> %d", sizeBefore, after)
	}
	after := treeSums(t, dir)
	for k, v := range sums {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += ", "
		}
		s += id
	}
	return s
}
