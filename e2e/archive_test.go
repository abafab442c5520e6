package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"go.temporal.io/sdk/client"

	"zcloud/archive"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// Full + 3 incrementals archived by the Archive workflow into S3 (moto,
// class GLACIER); the source dataset destroyed; a fresh worker that has
// only the owner's private key and the store (no host key, no manifest
// cache, another task queue) restores it with the Restore workflow, over
// SSH, after really waiting for the Glacier retrieval.
func TestArchiveFullAndIncrementalsRestoredFromTheArchiveAlone(t *testing.T) {
	e := newEnv(t)
	w, moto := newGlacierWorld(t, e, ", part_size: 5242880, parallel: 2")
	e.startWorker(w.cfg)

	var ids []string
	want := []string{"full:s0", "incr:s1", "incr:s2", "incr:s3"}
	for i := 0; i < 4; i++ {
		w.round(t, i)
		st, id, err := w.archive(w.input())
		if err != nil {
			t.Fatalf("archive round %d: %v", i, err)
		}
		ids = append(ids, id)
		wantAction := contract.ArchiveIncremental
		if i == 0 {
			wantAction = contract.ArchiveFull
		}
		if st.Plan.Action != wantAction || st.Stream == nil || st.Stream.Stream.To.Name != fmt.Sprintf("s%d", i) {
			t.Fatalf("round %d: plan %+v stream %+v", i, st.Plan, st.Stream)
		}
		if st.Stream.Stream.Class != objstore.Glacier {
			t.Fatalf("stream stored as %s", st.Stream.Stream.Class)
		}
		// The chain's base is held on the source; the previous one released.
		if got := archUserrefs(t, fmt.Sprintf("%s@s%d", w.ds, i)); got != "1" {
			t.Fatalf("s%d userrefs %s, want 1 (held as the archive base)", i, got)
		}
		if i > 0 {
			if got := archUserrefs(t, fmt.Sprintf("%s@s%d", w.ds, i-1)); got != "0" {
				t.Fatalf("s%d userrefs %s after the base moved on", i-1, got)
			}
		}
		w.assertChain(t, want[:i+1]...)
		switch i {
		case 0:
			e.replayHistory(id, "archive-full")
		case 1:
			e.replayHistory(id, "archive-incremental")
		}
	}
	// Nothing new: the run is skipped.
	st, id, err := w.archive(w.input())
	if err != nil || st.Plan.Action != contract.ArchiveSkip || st.Stream != nil {
		t.Fatalf("archive without a new snapshot: %v %+v", err, st.Plan)
	}
	ids = append(ids, id)
	t.Logf("skipped: %s", st.Plan.Reason)
	e.replayHistory(id, "archive-skip")

	wantSums := treeSums(t, w.dir)
	wantGUIDs := archSnapGUIDs(t, w.ds.String())
	testenv.MustZFS(t, "zfs", "release", contract.ArchiveHoldTag, w.ds.String()+"@s3")
	archDestroy(t, w.ds.String())

	// A fresh worker: its key source has the owner's key only.
	freshQueue := testenv.RandomName("q-restore-")
	freshKeys := archKeyDir(t, map[string]*age.X25519Identity{"owner": w.owner})
	fresh, _ := w.config(t, freshQueue, freshKeys, "")
	e.startWorker(fresh)

	// moto moves a restore None -> IN_PROGRESS -> RESTORED, one step every
	// `times` lookups of the object (and reports "None" as restored). A poll
	// reads each object's status twice (archive.StreamObjects, then
	// RestoreStatus) with up to two lookups in between, so with times 3 the
	// first poll takes it to IN_PROGRESS and still finds it there (see
	// TestRestoreCancelledWhileWaitingForRetrievalEndsCancelled); we then
	// hold it there (the next poll is 5s later) until we have seen the
	// workflow waiting through several polls, then let it finish.
	archMotoRestores(t, moto, "manual", 3)
	t.Cleanup(func() { archMotoRestores(t, moto, "immediate", 0) })
	target := e.dst.Pool.String() + "/restored"
	in := workflows.RestoreInput{Dataset: w.ds.String(), TargetDataset: target, Target: "backup", Identity: "owner", Tier: "Expedited",
		Days: 1, PollInterval: 5 * time.Second, HeartbeatTimeout: 10 * time.Second}
	run := e.archStart(freshQueue, workflows.RestoreName, in)
	ids = append(ids, run.GetID())

	waitFor := func(what string, ok func(workflows.RestoreStatus) bool) workflows.RestoreStatus {
		deadline := time.Now().Add(time.Minute)
		for {
			s, err := e.archQueryRestore(run.GetID())
			if err == nil && ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("restore never %s: %+v %v", what, s, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waiting := func(min int) func(workflows.RestoreStatus) bool {
		return func(s workflows.RestoreStatus) bool {
			return s.Phase == workflows.PhaseWaitingRetrieval && s.Retrieval != nil && s.Polls >= min
		}
	}
	first := waitFor("polled", waiting(1))
	archMotoRestores(t, moto, "manual", 1_000_000) // Glacier is slow today
	if first.Retrieval.Ready != 0 {
		t.Fatalf("objects readable at the first poll: %+v", first.Retrieval)
	}
	seen := waitFor("kept waiting", waiting(3))
	if seen.Retrieval.Ready != 0 || seen.Retrieval.Total != 4 || len(seen.Received) != 0 || seen.Plan == nil || len(seen.Plan.Chain) != 4 {
		t.Fatalf("while waiting: %+v", seen)
	}
	if _, err := os.Stat("/" + target); err == nil {
		t.Fatal("target exists while objects are still cold")
	}
	t.Logf("waiting for retrieval after %d polls: %d/%d ready; chosen tier: %v", seen.Polls, seen.Retrieval.Ready, seen.Retrieval.Total, seen.Plan.Chosen)
	archMotoRestores(t, moto, "manual", 1) // now let Glacier finish

	var res workflows.RestoreStatus
	if err := run.Get(e.ctx(5*time.Minute), &res); err != nil {
		t.Fatal(err)
	}
	if res.Phase != workflows.PhaseDone || len(res.Received) != 4 || res.Polls <= seen.Polls {
		t.Fatalf("restore result: %+v", res)
	}
	for _, r := range res.Received {
		if r.Skipped {
			t.Fatalf("stream %s skipped in an uninterrupted restore", r.StreamID)
		}
	}
	if got := treeSums(t, "/"+target); !archSameSums(got, wantSums) {
		t.Fatalf("restored files differ from the source's:\n got %v\nwant %v", got, wantSums)
	}
	if got := archSnapGUIDs(t, target); fmt.Sprint(got) != fmt.Sprint(wantGUIDs) {
		t.Fatalf("restored snapshots %v, want %v", got, wantGUIDs)
	}
	e.replayHistory(run.GetID(), "restore-glacier")
	e.archAssertNoSecrets(ids, w.owner, w.host)
}

// A damaged object: the drill names it, and a restore stops at it before
// zfs receive takes any of its bytes; the streams before it are intact.
func TestArchiveCorruptObjectIsNamedAndNeverReceived(t *testing.T) {
	e := newEnv(t)
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q, part_size: 1048576, parallel: 2", t.TempDir()))
	e.startWorker(w.cfg)
	for i := 0; i < 2; i++ {
		w.round(t, i)
		if _, _, err := w.archive(w.input()); err != nil {
			t.Fatal(err)
		}
	}
	m := w.assertChain(t, "full:s0", "incr:s1")
	// The files as of s0 (zfs-fuse shows no .zfs/snapshot): restore s0
	// alone first, a control that also proves the intact chain restores.
	if err := w.restore(t, workflows.RestoreInput{Snapshot: "s0", TargetDataset: e.dst.Pool.String() + "/s0only"}); err != nil {
		t.Fatalf("control restore: %v", err)
	}
	s0Sums := treeSums(t, "/"+e.dst.Pool.String()+"/s0only")

	// Damage the full in its middle part (the incremental is one part).
	full := m.Cycles[0].Streams[0]
	if len(full.Parts) < 3 {
		t.Fatalf("full has %d parts; want at least 3", len(full.Parts))
	}
	bad := full.Parts[len(full.Parts)/2]
	st := w.store(t).(*local.Store)
	archFlip(t, st.Path(full.Key), bad.Offset+bad.Size/2)

	// The drill names it.
	vrun := e.archStart(w.queue, workflows.VerifyName, workflows.VerifyInput{Dataset: w.ds.String(), Tier: "Bulk", PollInterval: time.Second})
	var vst workflows.VerifyStatus
	err := vrun.Get(e.ctx(2*time.Minute), &vst)
	if err == nil || !strings.Contains(err.Error(), full.Key) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("verify of a damaged archive: %v", err)
	}
	t.Logf("verify: %v", err)
	v, qerr := e.client.QueryWorkflow(e.ctx(10*time.Second), vrun.GetID(), "", workflows.StatusQuery)
	if qerr != nil || v.Get(&vst) != nil || len(vst.Findings) != 1 || vst.Findings[0].Key != full.Key || vst.Checked != 2 {
		t.Fatalf("verify status: %+v %v", vst, qerr)
	}

	// The restore names it and nothing of the damaged stream is received.
	target := e.dst.Pool.String() + "/restored"
	err = w.restore(t, workflows.RestoreInput{TargetDataset: target})
	if err == nil || !strings.Contains(err.Error(), full.Key) || !strings.Contains(err.Error(), fmt.Sprintf("part %d", bad.Number)) {
		t.Fatalf("restore of a damaged full: %v", err)
	}
	t.Logf("restore: %v", err)
	if out, err := archRun("zfs", "list", "-H", "-o", "name", target); err == nil {
		t.Fatalf("%s exists after the damaged full was refused:\n%s", target, out)
	}

	// Damage only the incremental: the full is received, the incremental
	// stops before zfs receive starts, and the target stays at s0.
	archFlip(t, st.Path(full.Key), bad.Offset+bad.Size/2) // repair the full
	incr := m.Cycles[0].Streams[1]
	archFlip(t, st.Path(incr.Key), incr.StoredSize/2)
	target2 := e.dst.Pool.String() + "/restored2"
	err = w.restore(t, workflows.RestoreInput{TargetDataset: target2})
	if err == nil || !strings.Contains(err.Error(), incr.Key) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("restore of a damaged incremental: %v", err)
	}
	if got := archSnapGUIDs(t, target2); len(got) != 1 || got["s0"] != full.To.GUID {
		t.Fatalf("target after a refused incremental: %v", got)
	}
	if got := treeSums(t, "/"+target2); !archSameSums(got, s0Sums) {
		t.Fatalf("target changed by a refused incremental")
	}
}

// restore runs Restore on the world's worker with its defaults filled in.
func (w *archiveWorld) restore(t *testing.T, in workflows.RestoreInput) error {
	_, err := w.restoreStatus(t, in)
	return err
}

// A new full much smaller than the previous one fails the sanity check and
// the previous cycle stays, objects and manifest entries alike, even with
// --force. Deleting more cycles than allowed waits for an approval; a
// rejection deletes nothing, an approval of the plan deletes the old cycle.
func TestArchiveSanityCheckKeepsThePreviousCycleAndDeletionNeedsApproval(t *testing.T) {
	e := newEnv(t)
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q, class: GLACIER", t.TempDir()))
	// The operator allows the waivers this test asks for (an input alone cannot).
	w.cfg, w.cfgPath = w.config(t, e.queue, w.keysDir, ", allow_force: true, allow_accept_smaller: true")
	e.startWorker(w.cfg)
	w.round(t, 0)
	st, _, err := w.archive(w.input())
	if err != nil || st.Check == nil || !st.Check.Verified {
		t.Fatalf("first cycle: %v %+v", err, st.Check)
	}
	afterFirst := time.Now()
	m1 := w.assertChain(t, "full:s0")
	old := m1.Cycles[0]

	// The dataset is (nearly) emptied; a new cycle starts because the
	// chain's base s0 is gone (a cycle shorter than the config's 30d is
	// not allowed).
	if err := os.RemoveAll(filepath.Join(w.dir, "d0")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(w.dir, "d1"))
	testenv.MustZFS(t, "zfs", "snapshot", w.ds.String()+"@small")
	testenv.MustZFS(t, "zfs", "release", contract.ArchiveHoldTag, w.ds.String()+"@s0")
	testenv.MustZFS(t, "zfs", "destroy", w.ds.String()+"@s0")
	in := w.input()
	in.Force = true // even waiving the minimum storage duration
	// The new cycle's id (one-second resolution) must differ from the first's.
	waitNextSecond(t, afterFirst)
	st, _, err = w.archive(in)
	if err == nil || !strings.Contains(err.Error(), "sanity check") || !strings.Contains(err.Error(), "previous cycle is kept") {
		t.Fatalf("archive of a much smaller full: %v", err)
	}
	t.Logf("sanity: %v", err)
	m2 := w.assertChain(t, "full:s0", "full:small")
	if m2.Cycles[0].ID != old.ID || m2.Cycles[1].Verified.IsZero() == false {
		t.Fatalf("cycles after the failed sanity check: %+v", m2.Cycles)
	}
	if probs := archive.VerifyHead(context.Background(), w.store(t), old.Streams); len(probs) > 0 {
		t.Fatalf("previous cycle damaged: %v", probs)
	}

	// The operator confirms the shrink; rotation now wants to delete the
	// old cycle, and max_delete_cycles 0 makes that wait for approval.
	in.AcceptSmaller, in.MaxDeleteCycles, in.ApprovalTimeout = true, 0, time.Hour
	run := e.archStart(w.queue, workflows.ArchiveName, in)
	waiting := w.waitPhase(t, run.GetID(), workflows.PhaseAwaitingApproval)
	if waiting.Deletion == nil || len(waiting.Deletion.Delete) != 1 || waiting.Deletion.Delete[0].ID != old.ID {
		t.Fatalf("deletion plan: %+v", waiting.Deletion)
	}
	// A wrong plan ID is refused by the validator; a rejection deletes nothing.
	if err := w.decide(run.GetID(), workflows.Approval{Approve: true, By: "test", PlanID: "nope"}); err == nil || !strings.Contains(err.Error(), "not the deletion plan") {
		t.Fatalf("approval of a wrong plan: %v", err)
	}
	if err := w.decide(run.GetID(), workflows.Approval{Approve: false, By: "test", PlanID: waiting.Deletion.ID}); err != nil {
		t.Fatal(err)
	}
	var done workflows.ArchiveStatus
	if err := run.Get(e.ctx(time.Minute), &done); err != nil || done.Phase != workflows.PhaseRejected {
		t.Fatalf("rejected run: %v %s", err, done.Phase)
	}
	w.assertChain(t, "full:s0", "full:small")

	// Approved: the old cycle's objects and manifest entry go.
	in.AcceptSmaller = false // the cycle is verified now
	run = e.archStart(w.queue, workflows.ArchiveName, in)
	waiting = w.waitPhase(t, run.GetID(), workflows.PhaseAwaitingApproval)
	if err := w.decide(run.GetID(), workflows.Approval{Approve: true, By: "test", PlanID: waiting.Deletion.ID}); err != nil {
		t.Fatal(err)
	}
	if err := run.Get(e.ctx(time.Minute), &done); err != nil || done.Phase != workflows.PhaseDone || done.Deleted == nil || done.Deleted.Objects != 1 {
		t.Fatalf("approved run: %v %+v", err, done)
	}
	w.assertChain(t, "full:small")
	if _, err := w.store(t).Head(context.Background(), old.Streams[0].Key); err == nil {
		t.Fatal("old cycle's object still stored")
	}
}

func (w *archiveWorld) waitPhase(t *testing.T, id, phase string) workflows.ArchiveStatus {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st workflows.ArchiveStatus
		v, err := w.e.client.QueryWorkflow(w.e.ctx(10*time.Second), id, "", workflows.StatusQuery)
		if err == nil && v.Get(&st) == nil && st.Phase == phase {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %q: %+v %v", id, phase, st, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *archiveWorld) decide(id string, ap workflows.Approval) error {
	h, err := w.e.client.UpdateWorkflow(w.e.ctx(30*time.Second), client.UpdateWorkflowOptions{WorkflowID: id,
		UpdateName: workflows.ApproveDeletionUpdate, Args: []any{ap}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return err
	}
	var res string
	return h.Get(w.e.ctx(30*time.Second), &res)
}

// SIGKILL the worker process mid-upload and mid-restore: both finish, the
// manifest has exactly the expected streams, the store no orphans, and the
// restored dataset every snapshot once with the source's files.
func TestArchiveAndRestoreSurviveWorkerKill(t *testing.T) {
	e := newEnv(t)
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q, part_size: 1048576", t.TempDir()))
	e.cfgPath = w.cfgPath
	// The upload holds once the store took 1 MiB of the ~6 MiB full: the
	// kill is mid-upload.
	e.holdAt("upload", 1<<20)
	w1 := e.startWorkerProcess()
	w.round(t, 0)
	run := e.archStart(w.queue, workflows.ArchiveName, w.input())
	e.waitHeld("upload")
	// The retry must see this attempt's progress (its heartbeat details):
	// the held upload keeps heartbeating, so the server gets them.
	e.archWaitProgress(run.GetID(), "ArchiveStream", 1<<20)
	if err := syscall.Kill(-w1.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w1.Wait()
	t.Log("worker killed mid-upload; starting another")
	w2 := e.startWorkerProcess()
	var st workflows.ArchiveStatus
	if err := run.Get(e.ctx(4*time.Minute), &st); err != nil {
		t.Fatal(err)
	}
	if n := e.archMaxAttempt(run.GetID(), "ArchiveStream"); n < 2 {
		t.Fatalf("upload finished in %d attempt(s): the kill did not interrupt it", n)
	}
	if st.Stream.RestartedAfter < 1<<20 {
		t.Fatalf("the retry did not see the killed attempt's progress: %+v", st.Stream)
	}
	w.assertChain(t, "full:s0")
	for i := 1; i < 3; i++ {
		w.round(t, i)
		if _, _, err := w.archive(w.input()); err != nil {
			t.Fatal(err)
		}
	}
	w.assertChain(t, "full:s0", "incr:s1", "incr:s2")
	wantSums := treeSums(t, w.dir)
	wantGUIDs := archSnapGUIDs(t, w.ds.String())

	// Restore, killing the worker while the full is being received.
	ownerKey := filepath.Join(w.keysDir, "owner")
	if err := os.WriteFile(ownerKey, []byte(w.owner.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := e.dst.Pool.String() + "/restored"
	in := workflows.RestoreInput{Dataset: w.ds.String(), TargetDataset: target, Identity: "owner", Tier: "Standard", Days: 1,
		PollInterval: time.Second, HeartbeatTimeout: 5 * time.Second}
	e.holdAt("restore", 1<<20) // zfs receive took 1 MiB of the full: the kill is mid-restore
	rrun := e.archStart(w.queue, workflows.RestoreName, in)
	e.waitHeld("restore")
	if err := syscall.Kill(-w2.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w2.Wait()
	t.Log("worker killed mid-restore; starting another")
	e.startWorkerProcess()
	var rst workflows.RestoreStatus
	if err := rrun.Get(e.ctx(4*time.Minute), &rst); err != nil {
		t.Fatal(err)
	}
	if n := e.archMaxAttempt(rrun.GetID(), "ReceiveArchiveStream"); n < 2 {
		t.Fatalf("restore finished with %d attempt(s) per stream: the kill did not interrupt it", n)
	}
	if len(rst.Received) != 3 {
		t.Fatalf("received %+v", rst.Received)
	}
	if got := archSnapGUIDs(t, target); fmt.Sprint(got) != fmt.Sprint(wantGUIDs) {
		t.Fatalf("restored snapshots %v, want %v", got, wantGUIDs)
	}
	if got := treeSums(t, "/"+target); !archSameSums(got, wantSums) {
		t.Fatal("restored files differ from the source's")
	}
	w.assertChain(t, "full:s0", "incr:s1", "incr:s2")
}

func archFlip(t *testing.T, path string, off int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func archSameSums(a, b map[string]string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func archRun(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// destroyRetry destroys a dataset, retrying while zfs-fuse says busy.
func archDestroy(t *testing.T, ds string) {
	var out string
	var err error
	for i := 0; i < 30; i++ {
		if out, err = archRun("zfs", "destroy", "-r", "-f", ds); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("zfs destroy %s: %v\n%s", ds, err, out)
}
