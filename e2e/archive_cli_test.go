package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap/zaptest"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workerapp"
	"zcloud/workflows"
)

// The CLI against a real Temporal server: archive schedule (dry run,
// create, update), a Schedule tick starting archive/<dataset>, archive
// status, restore plan's error for a dataset with no archive, and --help.
// No ZFS is touched but `zfs get` of a dataset that does not exist.
func TestArchiveCLISchedulesStatusAndPlan(t *testing.T) {
	tmp := testenv.SharedTemporal(t)
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := age.GenerateX25519Identity()
	host, _ := age.GenerateX25519Identity()
	keys := archKeyDir(t, map[string]*age.X25519Identity{"host": host, "owner": owner})
	queue := testenv.RandomName("q-cli-")
	ds := testenv.RandomName("nopool") + "/data"
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
keys: {dir: %q}
archive:
  store: {kind: local, dir: %q}
  recipients: [%s]
  host_identity: host
  restore_identity: owner
  schedule: 1h
  verify_schedule: 720h
  datasets: [{dataset: %s, cycle: 90d}]
`, tmp.HostPort, tmp.Namespace, queue, keys, t.TempDir(), owner.Recipient(), ds)
	cfgPath := filepath.Join(t.TempDir(), "zcloud.yaml")
	os.WriteFile(cfgPath, []byte(y), 0o600)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	zc := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--config", cfgPath)...).CombinedOutput()
		return string(out), err
	}
	cl, err := client.Dial(client.Options{HostPort: tmp.HostPort, Namespace: tmp.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	t.Cleanup(func() {
		for _, id := range []string{workflows.ArchiveScheduleID(ds), workflows.VerifyScheduleID(ds)} {
			cl.ScheduleClient().GetHandle(context.Background(), id).Delete(context.Background())
		}
	})

	out, err := zc("archive", "schedule", "--dry-run")
	if err != nil || !strings.Contains(out, "would create archive-schedule/"+ds+": every 1h0m0s") || !strings.Contains(out, "would create archive-verify-schedule/"+ds+": every 720h0m0s") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if out, err = zc("archive", "schedule"); err != nil || !strings.Contains(out, "create archive-schedule/"+ds) {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if out, err = zc("archive", "schedule"); err != nil || !strings.Contains(out, "update archive-schedule/"+ds) {
		t.Fatalf("update: %v\n%s", err, out)
	}

	// A tick starts archive/<dataset>; it fails cleanly on the missing dataset.
	w := workerapp.New(cl, cfg, activities.New(cfg, zaptest.NewLogger(t)))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ScheduleClient().GetHandle(ctx, workflows.ArchiveScheduleID(ds)).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		t.Fatal(err)
	}
	var runErr error
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the schedule's tick started no %s", workflows.ArchiveWorkflowID(ds))
		}
		run := cl.GetWorkflow(ctx, workflows.ArchiveWorkflowID(ds), "")
		if _, err := cl.DescribeWorkflowExecution(ctx, run.GetID(), ""); err != nil {
			continue
		}
		runErr = run.Get(ctx, nil)
		break
	}
	if runErr == nil || !strings.Contains(runErr.Error(), ds) || !strings.Contains(runErr.Error(), contract.ErrTypeNotFound) {
		t.Fatalf("archive of a missing dataset: %v", runErr)
	}
	// The tick that started it: the archive run's parent.
	first, err := cl.GetWorkflowHistory(ctx, workflows.ArchiveWorkflowID(ds), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT).Next()
	if err != nil {
		t.Fatal(err)
	}
	parent := first.GetWorkflowExecutionStartedEventAttributes().GetParentWorkflowExecution()
	if parent.GetWorkflowId() == "" {
		t.Fatalf("archive run has no parent tick: %v", first)
	}
	replayAndRecord(t, cl, parent.GetWorkflowId(), parent.GetRunId(), "archive-tick")

	out, err = zc("archive", "status", ds)
	if err != nil || !strings.Contains(out, "manifest: none yet") || !strings.Contains(out, "last run archive/"+ds+": failed") ||
		!strings.Contains(out, "schedule archive-schedule/"+ds+": every 1h0m0s") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	out, err = zc("restore", "plan", ds)
	if err == nil || !strings.Contains(out, "no archive of "+ds) {
		t.Fatalf("restore plan without an archive: %v\n%s", err, out)
	}
	out, err = zc("restore", "run", ds, "--to", "x/y;rm")
	if err == nil || !strings.Contains(out, "--to") {
		t.Fatalf("hostile --to: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"archive", "--help"}, {"archive", "run", "--help"}, {"restore", "plan", "--help"}, {"restore", "status", "--help"}} {
		if out, err := zc(args...); err != nil || !strings.Contains(out, "Usage:") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
}
