package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// A restore --to a dataset that exists without snapshots is refused at the
// plan, before anything is retrieved (hours, on Glacier), within a minute,
// and the dataset is left as it was.
func TestRestoreOverSnapshotlessDatasetRefusedAtOnce(t *testing.T) {
	e := newEnv(t)
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q", t.TempDir()))
	e.startWorker(w.cfg)
	w.round(t, 0)
	if _, _, err := w.archive(w.input()); err != nil {
		t.Fatal(err)
	}
	target := e.dst.Pool.String() + "/existing"
	testenv.MustZFS(t, "zfs", "create", target)
	begin := time.Now()
	err := w.restore(t, workflows.RestoreInput{TargetDataset: target})
	checkErr(t, err, contract.ErrTypeTargetModified, "already exists and holds no snapshot")
	if !strings.Contains(err.Error(), "plan") {
		t.Errorf("refused after the plan: %v", err)
	}
	if d := time.Since(begin); d > time.Minute {
		t.Errorf("took %s", d)
	}
	if got := archSnapGUIDs(t, target); len(got) != 0 {
		t.Fatalf("target changed: %v", got)
	}
}
