package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"zcloud/activities"
	"zcloud/cli"
	"zcloud/config"
	"zcloud/internal/testenv"
	"zcloud/retention"
	"zcloud/workerapp"
	"zcloud/workflows"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// policyEnv is a zfs-fuse pool with one dataset under a policy, a worker
// and the zcloud CLI, all against the shared Temporal dev server.
type policyEnv struct {
	t       *testing.T
	ds      zfsname.Dataset
	cfgPath string
	cfg     *config.Config
	client  client.Client
	zfs     zfsexec.ZFS
}

// newPolicyEnv creates pool/data and a config whose only policy (the YAML
// flow mapping fields after "dataset: ...") governs it.
func newPolicyEnv(t *testing.T, policyFields string) *policyEnv {
	t.Helper()
	tmp := testenv.SharedTemporal(t)
	pool := testenv.NewPool(t, "pol", 1, 128, "")
	e := &policyEnv{t: t, ds: zfsname.MustDataset(pool.Pool.String() + "/data"), zfs: zfsexec.ZFS{R: zfsexec.NewLocal(zap.NewNop())}}
	testenv.MustZFS(t, "zfs", "create", e.ds.String())
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
log: {level: debug}
policies:
  - {dataset: %s, %s}
`, tmp.HostPort, tmp.Namespace, testenv.RandomName("q-"), e.ds, policyFields)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.cfgPath = filepath.Join(t.TempDir(), "zcloud.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, err := client.Dial(client.Options{HostPort: tmp.HostPort, Namespace: tmp.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.client = cl
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	w := workerapp.New(cl, cfg, activities.New(cfg, log))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	// Registered after the worker's Stop, so it runs first: no tick may
	// start against a destroyed pool.
	t.Cleanup(func() {
		_ = cl.ScheduleClient().GetHandle(context.Background(), workflows.ScheduleID(e.ds.String())).Delete(context.Background())
	})
	return e
}

// zcloud runs the CLI in process with the test's config.
func (e *policyEnv) zcloud(args ...string) (string, error) {
	e.t.Helper()
	root := cli.Root()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--config", e.cfgPath}, args...))
	err := root.Execute()
	e.t.Logf("zcloud %s:\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

func (e *policyEnv) mustZcloud(args ...string) string {
	e.t.Helper()
	out, err := e.zcloud(args...)
	if err != nil {
		e.t.Fatalf("zcloud %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// snapshots lists the dataset's snapshot names, oldest first.
func (e *policyEnv) snapshots() []string {
	e.t.Helper()
	infos, err := e.zfs.ListSnapshots(context.Background(), e.ds)
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, si := range infos {
		names = append(names, si.Snapshot.Name())
	}
	return names
}

func (e *policyEnv) snap(names ...string) {
	e.t.Helper()
	for _, n := range names {
		testenv.MustZFS(e.t, "zfs", "snapshot", e.ds.String()+"@"+n)
	}
}

// waitFor polls cond every 250ms until it holds or the timeout passes (a
// limit for a broken run: cond is the real observable the test waits on).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// scheduled returns the snapshots whose zcloud name time is at or after since.
func scheduled(names []string, since time.Time) []string {
	var out []string
	for _, n := range names {
		if ts, ok := retention.ParseSnapshotName("zcloud", n); ok && !ts.Before(since.Truncate(time.Second)) {
			out = append(out, n)
		}
	}
	return out
}

func (e *policyEnv) prune() (workflows.PruneStatus, string, error) {
	desc, err := e.client.DescribeWorkflowExecution(context.Background(), workflows.PruneWorkflowID(e.ds.String()), "")
	if err != nil {
		return workflows.PruneStatus{}, "", err
	}
	runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	v, err := e.client.QueryWorkflow(context.Background(), workflows.PruneWorkflowID(e.ds.String()), runID, workflows.StatusQuery)
	if err != nil {
		return workflows.PruneStatus{}, runID, err
	}
	var st workflows.PruneStatus
	return st, runID, v.Get(&st)
}

// waitAwaiting waits for a prune run other than notRun to wait for approval.
func (e *policyEnv) waitAwaiting(notRun string) (workflows.PruneStatus, string) {
	e.t.Helper()
	var st workflows.PruneStatus
	var run string
	waitFor(e.t, 60*time.Second, "a prune waiting for approval", func() bool {
		var err error
		st, run, err = e.prune()
		return err == nil && run != notRun && st.Phase == workflows.PhaseAwaitingApproval
	})
	return st, run
}

func (e *policyEnv) waitPruneEnd(run string) workflows.PruneStatus {
	e.t.Helper()
	var st workflows.PruneStatus
	if err := e.client.GetWorkflow(context.Background(), workflows.PruneWorkflowID(e.ds.String()), run).Get(e.ctx(time.Minute), &st); err != nil {
		e.t.Fatalf("prune run %s: %v", run, err)
	}
	return st
}

func (e *policyEnv) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	return ctx
}

// The Schedule takes snapshots every minute (frequent_minutes: 1, checked
// every 2s) and prunes to the newest zcloud snapshot (frequent: 1), except
// what replication holds (tag zcloud-backup) and what zcloud did not take.
func TestPolicyScheduleSnapshotsAndPrunesButKeepsHeld(t *testing.T) {
	e := newPolicyEnv(t, "frequent: 1, frequent_minutes: 1, schedule: 2s, max_destroy_count: -1, max_destroy_percent: -1")
	start := time.Now()
	// Snapshots in zcloud's scheme (named in 2020, created now: retention
	// looks at the creation property), one held as replication would hold
	// it, and one a person took.
	old := []string{"zcloud_20200101T000000Z", "zcloud_20200101T000100Z", "zcloud_20200101T000200Z", "zcloud_20200101T000300Z"}
	held := old[1]
	e.snap("manual-before-upgrade")
	e.snap(old...)
	testenv.MustZFS(t, "zfs", "hold", "zcloud-backup", e.ds.String()+"@"+held)

	// Dry run first: nothing is destroyed, every snapshot has its reason.
	plan := e.mustZcloud("policy", "plan", e.ds.String())
	for _, want := range []string{
		held + " ", "held (1 hold)",
		"manual-before-upgrade", "not taken by zcloud",
		"zcloud_20200101T000300Z", "newest snapshot",
		"kept by no bucket of the policy", "destroy 2 of 4 zcloud snapshots", "no approval needed",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan output lacks %q", want)
		}
	}
	if got := e.snapshots(); len(got) != 5 {
		t.Fatalf("the dry run changed the snapshots: %v", got)
	}

	out := e.mustZcloud("policy", "apply")
	if !strings.Contains(out, "create policy/"+e.ds.String()+": every 2s, catch-up window 10s, overlap allow-all") {
		t.Fatalf("apply output: %s", out)
	}
	desc, err := e.client.ScheduleClient().GetHandle(context.Background(), workflows.ScheduleID(e.ds.String())).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p := desc.Schedule.Policy; p == nil || p.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL || p.CatchupWindow != 10*time.Second {
		t.Fatalf("schedule policies: %+v", desc.Schedule.Policy)
	}

	// Wait for two scheduled snapshots (two different minutes): each new one
	// makes the previous one prunable.
	seen := map[string]bool{}
	var last []string
	var ticks []client.ScheduleActionResult // recent ticks, caught as each new snapshot appears
	waitFor(t, 150*time.Second, "two scheduled snapshots", func() bool {
		last = e.snapshots()
		for _, n := range scheduled(last, start) {
			if !seen[n] {
				seen[n] = true
				if d, err := e.schedule().Describe(context.Background()); err == nil {
					ticks = append(ticks, d.Info.RecentActions...)
				}
			}
		}
		return len(seen) >= 2
	})
	// Then the set settles on: the held one, the manual one, and exactly one
	// scheduled snapshot (the newest); the other 2020 snapshots are gone.
	waitFor(t, 30*time.Second, "the prune to settle", func() bool {
		last = e.snapshots()
		s := scheduled(last, start)
		want := []string{"manual-before-upgrade", held}
		if len(s) == 1 {
			want = append(want, s[0])
		}
		slices.Sort(want)
		got := slices.Clone(last)
		slices.Sort(got)
		return len(s) == 1 && slices.Equal(got, want)
	})
	if !slices.Contains(last, held) {
		t.Fatalf("the held snapshot %s was destroyed: %v", held, last)
	}
	t.Logf("after %s: %v (scheduled snapshots seen: %d)", time.Since(start).Round(time.Second), last, len(seen))

	status := e.mustZcloud("policy", "status", e.ds.String())
	if !strings.Contains(status, "schedule policy/"+e.ds.String()+": every 2s") || !strings.Contains(status, "prune policy-prune/"+e.ds.String()) {
		t.Errorf("status output: %s", status)
	}

	// A tick that took a snapshot and started a prune replays.
	e.replayTicks(ticks, true)

	// apply without the policy removes the schedule (and only it).
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	os.WriteFile(empty, []byte(fmt.Sprintf("temporal: {address: %q, task_queue: x}\n", e.cfg.Temporal.Address)), 0o600)
	e.cfgPath = empty
	out, _ = e.zcloud("policy", "apply", "--dry-run")
	if !strings.Contains(out, "would remove policy/"+e.ds.String()) {
		t.Errorf("apply of a config without the policy should remove its schedule: %s", out)
	}
}

// Over the threshold the prune waits; a wrong plan ID and a rejection
// destroy nothing; ticks keep running meanwhile; an approval destroys
// exactly the planned set.
func TestPolicyPruneOverThresholdWaitsForApproval(t *testing.T) {
	e := newPolicyEnv(t, "frequent: 1, frequent_minutes: 1, schedule: 2s, max_destroy_count: 2, max_destroy_percent: -1, approval_timeout: 10m")
	var olds []string
	for i := 0; i < 6; i++ {
		olds = append(olds, fmt.Sprintf("zcloud_20200101T00%02d00Z", i))
	}
	e.snap(olds...)
	e.mustZcloud("policy", "apply")
	sched := e.client.ScheduleClient().GetHandle(context.Background(), workflows.ScheduleID(e.ds.String()))

	st, run1 := e.waitAwaiting("")
	if !st.Report.NeedsApproval || len(st.Report.Destroy) < 5 || !strings.Contains(st.Report.Verdict, "more than 2 snapshots") {
		t.Fatalf("waiting prune: %+v", st.Report)
	}
	before := e.snapshots()
	d0, _ := sched.Describe(context.Background())
	// Ticks go on while the prune waits (every 2 s; the limit is for a
	// schedule that stopped).
	waitFor(t, time.Minute, "the schedule to tick while a prune waits", func() bool {
		d1, err := sched.Describe(context.Background())
		return err == nil && d1.Info.NumActions > d0.Info.NumActions
	})
	if _, r, _ := e.prune(); r != run1 {
		t.Errorf("a second prune (%s) started while %s waits", r, run1)
	}
	assertNoneDestroyed(t, before, e.snapshots())

	// The validator refuses a plan ID that is not the waiting plan.
	out, err := e.zcloud("policy", "approve", e.ds.String(), "--plan", "0123456789ab", "--by", "mallory")
	if err == nil || !strings.Contains(err.Error()+out, "is not the plan waiting") {
		t.Fatalf("approval of a wrong plan: err %v, out %s", err, out)
	}
	if st, _, _ := e.prune(); st.Phase != workflows.PhaseAwaitingApproval {
		t.Fatalf("after a refused approval the prune should still wait, phase %q", st.Phase)
	}

	// Rejecting destroys nothing.
	out = e.mustZcloud("policy", "approve", e.ds.String(), "--reject", "--by", "tester")
	if !strings.Contains(out, "nothing will be destroyed") {
		t.Errorf("reject output: %s", out)
	}
	if end := e.waitPruneEnd(run1); end.Phase != workflows.PhaseRejected || end.Result != nil {
		t.Fatalf("rejected prune ended %+v", end)
	}
	assertNoneDestroyed(t, before, e.snapshots())

	// Pause the schedule so no other prune runs, trigger one tick by hand,
	// and approve the plan it waits with.
	if err := sched.Pause(context.Background(), client.SchedulePauseOptions{Note: "test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "running ticks to finish", func() bool {
		d, err := sched.Describe(context.Background())
		return err == nil && len(d.Info.RunningWorkflows) == 0
	})
	e.mustZcloud("policy", "run", e.ds.String())
	st, run2 := e.waitAwaiting(run1)
	atPlan := e.snapshots()
	planned := map[string]bool{}
	for _, d := range st.Report.Destroy {
		planned[d.Name] = true
	}
	status := e.mustZcloud("policy", "status", e.ds.String())
	if !strings.Contains(status, "waiting for approval until") || !strings.Contains(status, st.Report.ID) {
		t.Errorf("status does not show the waiting plan: %s", status)
	}
	out = e.mustZcloud("policy", "approve", e.ds.String(), "--plan", st.Report.ID, "--by", "tester")
	if !strings.Contains(out, fmt.Sprintf("destroying %d snapshots", len(planned))) {
		t.Errorf("approve output: %s", out)
	}
	end := e.waitPruneEnd(run2)
	if end.Phase != workflows.PhaseDone || end.Result == nil || len(end.Result.Destroyed) != len(planned) {
		t.Fatalf("approved prune ended %+v", end)
	}
	after := e.snapshots()
	for _, n := range atPlan {
		if planned[n] == slices.Contains(after, n) {
			t.Errorf("%s: planned=%v, still there=%v", n, planned[n], slices.Contains(after, n))
		}
	}
	if len(after) != len(atPlan)-len(planned) {
		t.Errorf("after the approved prune %v, want %v minus %v", after, atPlan, planned)
	}

	// The recorded histories (a rejected and an approved prune, with their
	// updates, and a tick) replay against the current workflow code.
	replayHistories(t, e.client, workflows.PruneWorkflowID(e.ds.String()), run1, run2)
	d, err := sched.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.replayTicks(d.Info.RecentActions, false)
}

func (e *policyEnv) schedule() client.ScheduleHandle {
	return e.client.ScheduleClient().GetHandle(context.Background(), workflows.ScheduleID(e.ds.String()))
}

// replayTicks waits for each SnapshotPolicy run to end and replays its
// history; withSnapshot requires one of them to have taken a snapshot.
func (e *policyEnv) replayTicks(ticks []client.ScheduleActionResult, withSnapshot bool) {
	e.t.Helper()
	done := map[string]bool{}
	snapshotted := false
	for _, a := range ticks {
		r := a.StartWorkflowResult
		if r == nil || done[r.FirstExecutionRunID] {
			continue
		}
		done[r.FirstExecutionRunID] = true
		var st workflows.PolicyStatus
		if err := e.client.GetWorkflow(context.Background(), r.WorkflowID, r.FirstExecutionRunID).Get(e.ctx(time.Minute), &st); err != nil {
			e.t.Fatalf("tick %s: %v", r.WorkflowID, err)
		}
		snapshotted = snapshotted || st.Snapshot != ""
		replayHistories(e.t, e.client, r.WorkflowID, r.FirstExecutionRunID)
	}
	if len(done) == 0 || withSnapshot && !snapshotted {
		e.t.Errorf("replayed %d ticks, none of them took a snapshot (want one)", len(done))
	}
}

func assertNoneDestroyed(t *testing.T, before, now []string) {
	t.Helper()
	for _, n := range before {
		if !slices.Contains(now, n) {
			t.Fatalf("%s was destroyed without approval (before %v, now %v)", n, before, now)
		}
	}
}

// replayHistories fetches each run's history and replays it with the
// current workflow code; with ZCLOUD_RECORD_HISTORY=dir it also writes the
// histories there (that is how workflows/testdata was recorded).
func replayHistories(t *testing.T, cl client.Client, id string, runs ...string) {
	t.Helper()
	rep := newReplayer(t)
	workflows.Register(rep)
	for _, run := range runs {
		h := &historypb.History{}
		it := cl.GetWorkflowHistory(context.Background(), id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			h.Events = append(h.Events, ev)
		}
		if err := rep.ReplayWorkflowHistory(nil, h); err != nil {
			t.Errorf("replay %s/%s: %v", id, run, err)
		}
		if dir := os.Getenv("ZCLOUD_RECORD_HISTORY"); dir != "" {
			b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.NewReplacer("/", "_", ":", "_").Replace(id) + "_" + run + ".json"
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
