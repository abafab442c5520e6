package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"zcloud/archive"
	"zcloud/cloud/objstore"
	"zcloud/contract"
	"zcloud/workflows"
)

// A deep drill receives the newest 3-stream chain into a scratch dataset
// with the private key supplied for the run, checks it and destroys it;
// the report is kept in the store. The same drill with the wrong private
// key (the backup host's own, which reads manifests but not streams)
// fails naming the key, and leaves no scratch behind.
func TestDeepDrillReceivesTheChainAndNamesAWrongKey(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "archive")
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q", dir))
	e.startWorker(w.cfg)
	for i := 0; i < 3; i++ {
		w.round(t, i)
		if _, _, err := w.archive(w.input()); err != nil {
			t.Fatalf("archive round %d: %v", i, err)
		}
	}
	w.assertChain(t, "full:s0", "incr:s1", "incr:s2")
	// The operator supplies the private key for the drill's run.
	if err := os.WriteFile(filepath.Join(w.keysDir, "owner"), []byte(w.owner.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	scratch := e.dst.Pool.String() + "/zcloud-drill"
	drill := func(identity string) (workflows.VerifyStatus, error) {
		run := e.archStart(w.queue, workflows.VerifyName, workflows.VerifyInput{Dataset: w.ds.String(), Identity: identity, Tier: "Bulk",
			PollInterval: time.Second, HeartbeatTimeout: 10 * time.Second, Deep: true, Scratch: scratch})
		var st workflows.VerifyStatus
		err := run.Get(e.ctx(3*time.Minute), &st)
		if err != nil {
			// A failed run's status is its last query answer.
			if v, qerr := e.client.QueryWorkflow(e.ctx(10*time.Second), run.GetID(), "", workflows.StatusQuery); qerr == nil {
				v.Get(&st)
			}
		}
		return st, err
	}

	st, err := drill("owner")
	if err != nil {
		t.Fatalf("deep drill: %v", err)
	}
	d := st.Drill
	if d == nil || !d.Passed || len(d.Chain) != 3 || !strings.HasSuffix(d.Chain[2], "@s2") || d.Bytes <= 0 {
		t.Fatalf("drill report %+v", d)
	}
	t.Logf("deep drill: %s, chain %v, %d bytes in %.2fs", d.Result, d.Chain, d.Bytes, d.Seconds)
	if _, err := archRun("zfs", "list", scratch); err == nil {
		t.Fatal("the scratch dataset was left behind")
	}
	if got := drillReports(t, w); len(got) != 1 || !got[0].Passed || len(got[0].Chain) != 3 {
		t.Fatalf("reports in the store: %+v", got)
	}

	_, err = drill("host")
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != contract.ErrTypeKeyIncorrect || !strings.Contains(err.Error(), `private key "host"`) {
		t.Fatalf("wrong key: want %s naming the key, got %v", contract.ErrTypeKeyIncorrect, err)
	}
	if _, err := archRun("zfs", "list", scratch); err == nil {
		t.Fatal("the scratch dataset was left behind after a failed drill")
	}
	got := drillReports(t, w)
	if len(got) != 2 || got[1].Passed || !strings.Contains(got[1].Result, "wrong private key") {
		t.Fatalf("reports in the store after the failed drill: %+v", got)
	}
}

// drillReports reads the drill reports kept in the store, oldest first.
func drillReports(t *testing.T, w *archiveWorld) []contract.DrillReport {
	t.Helper()
	st := w.store(t)
	objs, err := st.List(context.Background(), archive.DatasetPrefix(w.cfg.Archive.Store.Prefix, w.ds)+"/drills/")
	if err != nil {
		t.Fatal(err)
	}
	var out []contract.DrillReport
	for _, o := range objs {
		rc, err := st.Get(context.Background(), o.Key, objstore.Range{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var r contract.DrillReport
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", o.Key, err)
		}
		out = append(out, r)
	}
	return out
}
