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

	dto "github.com/prometheus/client_model/go"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap/zaptest"

	"zcloud/activities"
	"zcloud/archive"
	"zcloud/cloud/objstore"
	"zcloud/contract"
	"zcloud/metrics"
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
	m := metrics.New()
	e.startWorker(w.cfg, func(a *activities.Activities) { a.Metrics = m })
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
	// The metric: when the passed deep drill ended, per dataset; a
	// restarted worker reads it back from the reports in the store.
	end := float64(d.Started.Add(time.Duration(d.Seconds*float64(time.Second))).UnixMilli()) / 1000
	if got := drillGauge(m, w.ds.String()); got != end {
		t.Fatalf("deep drill gauge %v, want %v", got, end)
	}
	fresh := activities.New(w.cfg, zaptest.NewLogger(t))
	fresh.Metrics = metrics.New()
	activities.LoadDeepDrillMetrics(context.Background(), fresh)
	if got := drillGauge(fresh.Metrics, w.ds.String()); got != end {
		t.Fatalf("deep drill gauge after a restart %v, want %v", got, end)
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
	// A failed drill leaves the time of the last passed one, live and
	// after a restart (the newest report failed; the one before passed).
	if got := drillGauge(m, w.ds.String()); got != end {
		t.Fatalf("deep drill gauge after a failed drill %v, want %v", got, end)
	}
	fresh.Metrics = metrics.New()
	activities.LoadDeepDrillMetrics(context.Background(), fresh)
	if got := drillGauge(fresh.Metrics, w.ds.String()); got != end {
		t.Fatalf("deep drill gauge read back after a failed drill %v, want %v", got, end)
	}
}

// drillGauge is the deep-drill gauge of dataset (0: never set).
func drillGauge(m *metrics.Metrics, dataset string) float64 {
	var d dto.Metric
	if err := m.DeepDrillPassed.WithLabelValues(dataset).Write(&d); err != nil {
		return -1
	}
	return d.GetGauge().GetValue()
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
