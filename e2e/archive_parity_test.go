package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zcloud/archive"
	"zcloud/cloud/objstore/local"
	"zcloud/workflows"
)

// An archive with parity 10+2 (real Temporal, zfs-fuse, local store): one
// part object deleted and a byte flipped in another of the same group.
// The restore rebuilds both from parity, says so, and the data is
// byte-identical. With the group's parity objects gone too, the restore
// fails and names both damaged objects.
func TestArchiveParityRepairsALostAndADamagedPart(t *testing.T) {
	e := newEnv(t)
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q, part_size: 1048576, parallel: 2", t.TempDir()))
	w.cfg, w.cfgPath = w.config(t, w.queue, w.keysDir, ", parity: {data: 10, parity: 2}")
	e.startWorker(w.cfg)
	writeTree(t, filepath.Join(w.dir, "big"), 19, 12, 2<<20) // about 12 MiB more: over 10 parts
	w.round(t, 0)
	if _, _, err := w.archive(w.input()); err != nil {
		t.Fatal(err)
	}
	m := w.assertChain(t, "full:s0")
	full := m.Cycles[0].Streams[0]
	if full.Parity == nil || full.Parity.Data != 10 || full.Parity.Parity != 2 || len(full.Parts) < 10 {
		t.Fatalf("full: %d parts, parity %+v", len(full.Parts), full.Parity)
	}
	st := w.store(t).(*local.Store)
	if _, err := os.Stat(st.Path(full.Key)); !os.IsNotExist(err) {
		t.Fatalf("a parity stream is stored as part objects only, yet %s exists (%v)", full.Key, err)
	}
	t.Logf("full: %d parts of %d bytes, %d parity objects (%d bytes)", len(full.Parts), full.Parity.ShardSize, len(full.Parity.Shards), full.ParityBytes())
	srcSums := treeSums(t, w.dir)

	// archive status shows the cycle, what parity adds, the monthly cost
	// and the earliest deletion without an early-deletion charge.
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "archive", "status", w.ds.String(), "-v", "--config", w.cfgPath).CombinedOutput()
	for _, want := range []string{"storage: 1 cycles (keep_cycles 1)", "/month at list prices",
		"cycle " + full.Cycle + " (STANDARD): 1 streams", fmt.Sprintf("parity (%.0f%%)", 100*float64(full.ParityBytes())/float64(full.StoredSize)), "deletable without early-deletion charge from " + full.Uploaded.Local().Format("2006-01-02"),
		"as part objects + ", "parity 10+2"} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("archive status lacks %q: %v\n%s", want, err, out)
		}
	}
	t.Logf("archive status:\n%s", out)

	lost, damaged := archive.PartKey(full.Key, 3), archive.PartKey(full.Key, 7)
	if err := os.Remove(st.Path(lost)); err != nil {
		t.Fatal(err)
	}
	archFlip(t, st.Path(damaged), 12345)

	target := e.dst.Pool.String() + "/repaired"
	rst, err := w.restoreStatus(t, workflows.RestoreInput{TargetDataset: target})
	if err != nil {
		t.Fatalf("restore with a lost and a damaged part under parity 10+2: %v", err)
	}
	if len(rst.Received) != 1 || len(rst.Received[0].Repaired) != 2 ||
		!strings.HasPrefix(rst.Received[0].Repaired[0], lost+" (part 3): missing") ||
		!strings.HasPrefix(rst.Received[0].Repaired[1], damaged+" (part 7): damaged") {
		t.Fatalf("restore report: %+v", rst.Received)
	}
	t.Logf("repaired: %q", rst.Received[0].Repaired)
	if got := treeSums(t, "/"+target); !archSameSums(got, srcSums) {
		t.Fatalf("restored tree differs from the source (%d files vs %d)", len(got), len(srcSums))
	}
	if got := archSnapGUIDs(t, target); got["s0"] != full.To.GUID {
		t.Fatalf("restored snapshots %v", got)
	}

	// Without the group's parity the same damage cannot be repaired: the
	// restore names both objects and receives nothing.
	for j := 1; j <= 2; j++ {
		if err := os.Remove(st.Path(archive.ParityKey(full.Key, 1, j))); err != nil {
			t.Fatal(err)
		}
	}
	target2 := e.dst.Pool.String() + "/unrepaired"
	_, err = w.restoreStatus(t, workflows.RestoreInput{TargetDataset: target2})
	if err == nil || !strings.Contains(err.Error(), lost+": missing") || !strings.Contains(err.Error(), damaged+": damaged") {
		t.Fatalf("restore without parity: %v", err)
	}
	t.Logf("without parity: %v", err)
	if out, err := archRun("zfs", "list", "-H", "-o", "name", target2); err == nil {
		t.Fatalf("%s exists after an unrepairable full was refused:\n%s", target2, out)
	}
}

// restoreStatus runs Restore on the world's worker with its defaults
// filled in and returns its final status.
func (w *archiveWorld) restoreStatus(t *testing.T, in workflows.RestoreInput) (workflows.RestoreStatus, error) {
	in.Dataset, in.Identity, in.Tier, in.Days, in.PollInterval = w.ds.String(), "owner", "Standard", 1, time.Second
	in.HeartbeatTimeout = 10 * time.Second
	// The world's worker holds the host key only; the owner's key joins
	// its key source for restores (an operator copying it in).
	ownerKey := filepath.Join(w.keysDir, "owner")
	if _, err := os.Stat(ownerKey); err != nil {
		if err := os.WriteFile(ownerKey, []byte(fmt.Sprintf("%s\n", w.owner)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := w.e.archStart(w.queue, workflows.RestoreName, in)
	var st workflows.RestoreStatus
	err := run.Get(w.e.ctx(3*time.Minute), &st)
	return st, err
}
