package activities

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/retention"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// Where hold tags can be listed (OpenZFS) each tag gives its own reason;
// where only counts exist (zfs-fuse) the count does.
func TestBuildPlanHoldReasons(t *testing.T) {
	now := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
	snap := func(name string, age time.Duration, holds int, tags ...string) contract.PolicySnapshot {
		return contract.PolicySnapshot{Name: name, Created: now.Add(-age).Unix(), GUID: uint64(age), CreateTxg: uint64(now.Add(-age).Unix()), Holds: holds, HoldTags: tags}
	}
	l := contract.SnapshotListing{Snapshots: []contract.PolicySnapshot{
		snap("zcloud_20261122T120000Z", 5*time.Hour, 1, "zcloud-backup"),
		snap("zcloud_20261122T130000Z", 4*time.Hour, 1, "zcloud-archive"),
		snap("zcloud_20261122T140000Z", 3*time.Hour, 2),
		snap("zcloud_20261122T150000Z", 2*time.Hour, 1, "keep-me"),
		snap("zcloud_20261122T153000Z", 90*time.Minute, 0),
		snap("zcloud_20261122T160000Z", time.Hour, 0),
	}}
	l.Snapshots[4].HeldBelow = []string{"child: 1 hold"}
	req := contract.PlanRequest{Dataset: zfsname.MustDataset("tank/data"), Policy: retention.Policy{Hourly: 1}, Now: now,
		Protected: []retention.Protection{{Name: "zcloud_20261122T160000Z", Reason: "kept for the audit"}}, MaxDestroyCount: 0, MaxDestroyPercent: -1}
	rep, err := BuildPlan(req, time.UTC, l)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"zcloud_20261122T120000Z": "held by zcloud-backup (newest snapshot replicated to target backup)",
		"zcloud_20261122T130000Z": "held by zcloud-archive (base of the archive chain)",
		"zcloud_20261122T140000Z": "held (2 holds)",
		"zcloud_20261122T150000Z": "held by keep-me",
		"zcloud_20261122T153000Z": "held on descendant child: 1 hold",
		"zcloud_20261122T160000Z": "kept for the audit",
	}
	for _, d := range rep.Plan.Decisions {
		if d.Action != retention.Keep || !slices.Contains(d.Reasons, want[d.Snapshot.Name]) {
			t.Errorf("%s: %s %v, want keep with %q", d.Snapshot.Name, d.Action, d.Reasons, want[d.Snapshot.Name])
		}
	}
	if len(rep.Destroy) != 0 || rep.ID != PlanID("tank/data", nil) {
		t.Errorf("nothing may be destroyed: %+v", rep.Destroy)
	}
	// Without the holds, the same snapshots go (and the zero threshold asks for approval).
	for i := range l.Snapshots {
		l.Snapshots[i].Holds, l.Snapshots[i].HoldTags, l.Snapshots[i].HeldBelow = 0, nil, nil
	}
	rep, err = BuildPlan(req, time.UTC, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Destroy) != 5 || !rep.NeedsApproval || rep.Destroy[0].GUID != uint64(5*time.Hour) {
		t.Fatalf("unheld plan: %+v approval=%v", rep.Destroy, rep.NeedsApproval)
	}
}

func TestPlanIDDependsOnTheExactDestroySet(t *testing.T) {
	a := PlanID("tank/a", []contract.PlannedDestroy{{Name: "s1", GUID: 1}, {Name: "s2", GUID: 2}})
	for _, other := range []string{
		PlanID("tank/b", []contract.PlannedDestroy{{Name: "s1", GUID: 1}, {Name: "s2", GUID: 2}}),
		PlanID("tank/a", []contract.PlannedDestroy{{Name: "s1", GUID: 1}}),
		PlanID("tank/a", []contract.PlannedDestroy{{Name: "s1", GUID: 1}, {Name: "s2", GUID: 3}}),
	} {
		if other == a {
			t.Fatal("different destroy sets share a plan ID")
		}
	}
	if a != PlanID("tank/a", []contract.PlannedDestroy{{Name: "s1", GUID: 1}, {Name: "s2", GUID: 2}}) || len(a) != 12 {
		t.Fatal("plan ID not stable")
	}
}

// On zfs-fuse: the destroy re-checks every snapshot right before destroying
// it, and a retry after success changes nothing.
func TestDestroySnapshotsRechecksEachSnapshot(t *testing.T) {
	pool := testenv.NewPool(t, "act", 1, 128, "")
	ds := zfsname.MustDataset(pool.Pool.String() + "/data")
	testenv.MustZFS(t, "zfs", "create", "-p", ds.String()+"/child")
	// One hourly snapshot kept, every name the policy's: f (the newest) is
	// kept, a-e are prunable.
	cfg := &config.Config{Policies: []config.Policy{{Dataset: ds.String(), Policy: retention.Policy{Hourly: 1, Recursive: true}, IncludeForeign: true}}}
	a := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		testenv.MustZFS(t, "zfs", "snapshot", "-r", ds.String()+"@"+n)
	}
	l, err := a.listPolicySnapshots(ctx, ds, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Snapshots) != 6 || l.Snapshots[0].Name != "a" || l.Snapshots[0].GUID == 0 || l.Snapshots[0].Created == 0 {
		t.Fatalf("listing %+v", l)
	}
	var plan []contract.PlannedDestroy
	for _, s := range l.Snapshots[:5] {
		plan = append(plan, contract.PlannedDestroy{Name: s.Name, GUID: s.GUID})
	}

	var s testsuite.WorkflowTestSuite
	aenv := s.NewTestActivityEnvironment() // DestroySnapshots heartbeats: it needs an activity context
	aenv.RegisterActivity(a)
	destroyList := func(list []contract.PlannedDestroy) (contract.DestroyReport, error) {
		var rep contract.DestroyReport
		v, err := aenv.ExecuteActivity(a.DestroySnapshots, contract.DestroyRequest{Dataset: ds, Recursive: true, PlanID: "x", Snapshots: list})
		if err == nil {
			err = v.Get(&rep)
		}
		return rep, err
	}
	// A list naming f, which the configured policy keeps, is refused whole:
	// nothing is destroyed, not even the prunable a-e.
	f := l.Snapshots[5]
	_, err = destroyList(append(slices.Clone(plan), contract.PlannedDestroy{Name: f.Name, GUID: f.GUID}))
	wantNotAllowed(t, err, "snapshots[5]")
	if out := testenv.MustZFS(t, "zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-d", "1", ds.String()); strings.Count(out, "@") != 6 {
		t.Fatalf("the refused list destroyed something; left:\n%s", out)
	}
	plan = append(plan, contract.PlannedDestroy{Name: "never-existed", GUID: 42})
	// After the plan: a is held on the dataset, b on a child only, c is
	// destroyed and re-created (new guid), d is destroyed by someone else.
	testenv.MustZFS(t, "zfs", "hold", "zcloud-backup", ds.String()+"@a")
	testenv.MustZFS(t, "zfs", "hold", "zcloud-archive", ds.String()+"/child@b")
	testenv.MustZFS(t, "zfs", "destroy", "-r", ds.String()+"@c")
	testenv.MustZFS(t, "zfs", "snapshot", "-r", ds.String()+"@c")
	testenv.MustZFS(t, "zfs", "destroy", "-r", ds.String()+"@d")

	destroy := func() (contract.DestroyReport, error) { return destroyList(plan) }
	rep, err := destroy()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Destroyed, []string{"e"}) {
		t.Errorf("destroyed %v, want only e", rep.Destroyed)
	}
	reasons := map[string]string{}
	for _, s := range rep.Skipped {
		reasons[s.Name] = s.Reason
	}
	for name, want := range map[string]string{"a": "held since the plan (1 hold)", "b": "held since the plan on descendant", "c": contract.SkipChanged, "d": contract.SkipGone, "never-existed": contract.SkipGone} {
		if !strings.Contains(reasons[name], want) {
			t.Errorf("%s: skipped for %q, want %q", name, reasons[name], want)
		}
	}
	var left []string
	infos, _ := zfsexec.ZFS{R: a.Local}.ListSnapshots(ctx, ds)
	for _, si := range infos {
		left = append(left, si.Snapshot.Name())
	}
	if !slices.Equal(left, []string{"a", "b", "f", "c"}) {
		t.Errorf("left %v, want a b f c", left)
	}
	if out := testenv.MustZFS(t, "zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", ds.String()+"/child"); strings.Contains(out, "@e") {
		t.Errorf("recursive destroy left the child's @e: %s", out)
	}
	// A retry of the same request is harmless.
	rep2, err := destroy()
	if err != nil || len(rep2.Destroyed) != 0 {
		t.Fatalf("retry: %+v %v", rep2, err)
	}
	// The plan sees the holds: a by its count (zfs-fuse lists no tags), b on the child.
	l, err = a.listPolicySnapshots(ctx, ds, true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, s := range l.Snapshots {
		got[s.Name] = HoldReasons(s)
	}
	if !slices.Equal(got["a"], []string{"held (1 hold)"}) || !slices.Equal(got["b"], []string{"held on descendant child: 1 hold"}) || len(got["c"]) != 0 {
		t.Errorf("hold reasons %v", got)
	}
	testenv.MustZFS(t, "zfs", "release", "zcloud-backup", ds.String()+"@a")
	testenv.MustZFS(t, "zfs", "release", "zcloud-archive", ds.String()+"/child@b")
}
