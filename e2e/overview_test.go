package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"zcloud/cli"
	"zcloud/config"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// A small world (two datasets, one replica, one local archive, one job that
// keeps failing, one running, schedules for the policy and the archive) and
// `zcloud status` without an argument: the rows, their copies and ages, the
// next scheduled runs, the jobs' outcomes, the running job's progress and
// the warnings, as printed (golden, times normalised) and as --json.
func TestStatusOverviewAcrossTiers(t *testing.T) {
	e := newEnv(t)
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q", t.TempDir()))
	data := w.ds.String() // src/data: replicated and archived
	other := e.src.Pool.String() + "/other"
	testenv.MustZFS(t, "zfs", "create", other)
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
keys: {dir: %q}
targets:
  backup:
    transport: ssh
    ssh: {host: 127.0.0.1, port: %d, user: %s, identity_file: %q, host_key: %q, connect_timeout: 5s}
replications:
  - {source: %s, target: backup, target_dataset: %s/data}
  - {source: %s, target: backup, target_dataset: nosuchpool/other}
archive: {store: {%s}, recipients: [%q], host_identity: host, datasets: [{dataset: %s, cycle: 30d, sanity_min_percent: 50}], max_delete_cycles: -1, schedule: 8760h}
policies:
  - {dataset: %s, annual: 2}
`, e.temporal.HostPort, e.temporal.Namespace, e.queue, w.keysDir, e.sshd.Port, e.sshd.User, e.sshd.ClientKeyPath, e.sshd.HostKey,
		data, e.dst.Pool, other, w.storeY, w.owner.Recipient().String(), data, data)
	cfgPath := filepath.Join(t.TempDir(), "zcloud.yaml")
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	e.startWorker(cfg)

	// The archive holds s0; the replica the snapshot its Replicate took.
	w.round(t, 0)
	arch := e.startAs(workflows.ArchiveWorkflowID(data), workflows.ArchiveName, w.input())
	if err := arch.Get(e.ctx(5*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	good := workflows.ReplicateInput{Source: data, Target: "backup", TargetDataset: e.dst.Pool.String() + "/data"}
	var replicated workflows.ReplicateResult
	if err := e.startAs(workflows.ReplicateWorkflowID(good.Source, good.Target, good.TargetDataset), workflows.ReplicateName, good).Get(e.ctx(5*time.Minute), &replicated); err != nil {
		t.Fatal(err)
	}
	// The failing job: a target pool that does not exist, twice; each run
	// ends at once with the cause.
	bad := workflows.ReplicateInput{Source: other, Target: "backup", TargetDataset: "nosuchpool/other"}
	for i := 0; i < 2; i++ {
		begin := time.Now()
		err := e.startAs(workflows.ReplicateWorkflowID(bad.Source, bad.Target, bad.TargetDataset), workflows.ReplicateName, bad).Get(e.ctx(5*time.Minute), nil)
		if err == nil || !strings.Contains(err.Error(), "pool nosuchpool does not exist") {
			t.Fatalf("replication to a missing pool: %v", err)
		}
		if d := time.Since(begin); d > time.Minute {
			t.Fatalf("took %s", d)
		}
	}

	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	zcloud := func(args ...string) string {
		out, err := exec.Command(bin, append([]string{"--config", cfgPath}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("zcloud %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// Schedules that do not fire during the test (8760h: the archive's
	// through the CLI; the policy's, whose schedule config keeps at most
	// its finest period, under the id policy apply gives it); the overview
	// shows their next runs.
	zcloud("archive", "schedule")
	if _, err := e.client.ScheduleClient().Create(e.ctx(time.Minute), client.ScheduleOptions{
		ID:   workflows.ScheduleID(data),
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: 8760 * time.Hour}}},
		Action: &client.ScheduleWorkflowAction{ID: workflows.ScheduleID(data), Workflow: workflows.SnapshotPolicyName,
			TaskQueue: e.queue},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, id := range []string{workflows.ScheduleID(data), workflows.ArchiveScheduleID(data)} {
			_ = e.client.ScheduleClient().GetHandle(context.Background(), id).Delete(context.Background())
		}
	})

	// The running job: the next replication of data, held mid-send.
	w.round(t, 1)
	e.holdAt("send", 1)
	running := e.startAs(workflows.ReplicateWorkflowID(good.Source, good.Target, good.TargetDataset), workflows.ReplicateName, good)
	e.waitHeld("send")

	// --json: what scripts read.
	var ov cli.Overview
	if err := json.Unmarshal([]byte(zcloud("status", "--json")), &ov); err != nil {
		t.Fatal(err)
	}
	if len(ov.Datasets) != 2 || ov.Datasets[0].Dataset != data || ov.Datasets[1].Dataset != other {
		t.Fatalf("rows: %+v", ov.Datasets)
	}
	d, o := ov.Datasets[0].Copies, ov.Datasets[1].Copies
	if len(d) != 3 || d[0].Tier != "source" || d[1].Tier != "replica" || d[2].Tier != "archive" || len(o) != 2 {
		t.Fatalf("copies: %+v / %+v", d, o)
	}
	// The source's newest is the running replication's snapshot; the
	// replica holds the previous one.
	if d[0].Snapshot == "" || data+"@"+d[1].Snapshot != replicated.Snapshot || d[1].Snapshot >= d[0].Snapshot || d[2].Snapshot != "s0" {
		t.Errorf("newest: source %q replica %q archive %q", d[0].Snapshot, d[1].Snapshot, d[2].Snapshot)
	}
	for _, c := range d {
		if c.AgeSeconds == nil || *c.AgeSeconds < 0 || *c.AgeSeconds > 3600 {
			t.Errorf("%s age %v", c.Tier, c.AgeSeconds)
		}
	}
	if j := d[1].Job; j == nil || j.LastSuccess.IsZero() || !j.LastFailure.IsZero() || !j.Running || !strings.Contains(j.Progress, "send | SendSnapshots") {
		t.Errorf("replica job (running, mid-send): %+v", j)
	}
	// The next runs come from the schedules; a static replica has none.
	if d[0].Schedule != workflows.ScheduleID(data) || !d[0].NextRun.After(ov.Time) || d[2].Schedule != workflows.ArchiveScheduleID(data) || !d[2].NextRun.After(ov.Time) {
		t.Errorf("next runs: source %q %v, archive %q %v", d[0].Schedule, d[0].NextRun, d[2].Schedule, d[2].NextRun)
	}
	if d[1].Schedule != "" || !d[1].NextRun.IsZero() || o[0].Schedule != "" {
		t.Errorf("unscheduled copies show a schedule: %+v / %+v", d[1], o[0])
	}
	if j := d[0].Job; j == nil || j.ID != workflows.ScheduleID(data) || j.Running || j.FailuresInARow != 0 {
		t.Errorf("policy job: %+v", j)
	}
	if j := d[2].Job; j == nil || j.ID != workflows.ArchiveWorkflowID(data) || j.LastSuccess.IsZero() {
		t.Errorf("archive job: %+v", j)
	}
	if j := o[1].Job; j == nil || j.FailuresInARow != 2 || !j.LastSuccess.IsZero() || !strings.Contains(j.Cause, "pool nosuchpool does not exist") {
		t.Errorf("failing job: %+v", j)
	}
	if o[1].Snapshot != "" || o[1].AgeSeconds != nil {
		t.Errorf("the failing replica holds %q", o[1].Snapshot)
	}
	if len(ov.Warnings) != 2 || !strings.Contains(ov.Warnings[0], "holds no snapshot yet") || !strings.Contains(ov.Warnings[1], "failed 2 time(s) in a row") {
		t.Errorf("warnings: %q", ov.Warnings)
	}

	// The table as printed, times and pool names normalised.
	raw := zcloud("status")
	t.Logf("zcloud status:\n%s", raw)
	got := normaliseOverview(raw, e.src.Pool.String(), e.dst.Pool.String())
	golden := filepath.Join("testdata", "status-overview.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("zcloud status:\n%s\nwant (%s):\n%s", got, golden, want)
	}

	e.release("send")
	if err := running.Get(e.ctx(5*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
}

var (
	snapTimeRe = regexp.MustCompile(`zcloud_\d{8}T\d{6}Z`)
	dateRe     = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`)
	ageRe      = regexp.MustCompile(`(^|\s)(\d+s|\d+m\d\ds)(\s|$)`)
	columnsRe  = regexp.MustCompile(`\s{2,}`)
	portRe     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	// A running job's progress: its phase and step stay, bytes and rates go.
	runningRe = regexp.MustCompile(`running since \d\d:\d\d: (\S+ \| \S+).*$`)
)

// normaliseOverview replaces what changes between runs (snapshot times,
// dates, ages, the test pools' random names) and the column padding that
// follows from their lengths.
func normaliseOverview(s, src, dst string) string {
	s = strings.ReplaceAll(s, src, "SRC")
	s = strings.ReplaceAll(s, dst, "DST")
	s = snapTimeRe.ReplaceAllString(s, "zcloud_TIME")
	s = dateRe.ReplaceAllString(s, "DATE")
	s = portRe.ReplaceAllString(s, "127.0.0.1:PORT")
	var lines []string
	table := true
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		l = ageRe.ReplaceAllString(l, "${1}AGE${3}")
		l = runningRe.ReplaceAllString(l, "running since TIME: $1 ...")
		if l == "WARNINGS" {
			table = false // warnings keep their text
		}
		if table {
			l = columnsRe.ReplaceAllString(strings.TrimRight(l, " "), " | ")
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n") + "\n"
}

// startAs starts a workflow under the id the CLI would give it.
func (e *env) startAs(id, name string, in any) client.WorkflowRun {
	e.t.Helper()
	run, err := e.client.ExecuteWorkflow(e.ctx(time.Minute), client.StartWorkflowOptions{ID: id, TaskQueue: e.queue}, name, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}
