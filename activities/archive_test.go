package activities

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap/zaptest"

	"zcloud/archive"
	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/objstoretest"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/keys"
	"zcloud/zfsname"
)

// archiveFixture is a local store with a manifest built by hand (no ZFS):
// the manifest-side activities are tested against it.
type archiveFixture struct {
	t           *testing.T
	a           *Activities
	st          *local.Store
	owner, host *age.X25519Identity
	ds          zfsname.Dataset
	env         *testsuite.TestActivityEnvironment
}

func newArchiveFixture(t *testing.T, class objstore.Class) *archiveFixture {
	f := &archiveFixture{t: t, ds: zfsname.MustDataset("tank/data")}
	var err error
	f.owner, _ = age.GenerateX25519Identity()
	f.host, _ = age.GenerateX25519Identity()
	dir := t.TempDir()
	keyDir := filepath.Join(t.TempDir(), "keys")
	os.MkdirAll(keyDir, 0o700)
	for name, id := range map[string]*age.X25519Identity{"host": f.host, "owner": f.owner} {
		if err := os.WriteFile(filepath.Join(keyDir, name), []byte(id.String()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`archive: {store: {kind: local, dir: %q, part_size: 1048576, class: %s}, recipients: [%s], host_identity: host, restore_identity: owner, datasets: [{dataset: tank/data, cycle: 30d}],
  allow_force: true, allow_accept_smaller: true, max_delete_cycles: -1}`,
		dir, class, f.owner.Recipient())))
	if err != nil {
		t.Fatal(err)
	}
	f.a = &Activities{Config: cfg, Log: zaptest.NewLogger(t), Keys: keys.Source{Dir: keyDir}}
	if f.st, err = local.New(dir, local.Options{PartSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	f.env = s.NewTestActivityEnvironment()
	f.env.RegisterActivity(f.a)
	return f
}

// add uploads a stream of n random bytes and records it in the manifest.
func (f *archiveFixture) add(kind archivetypes.Kind, cycle string, from, to uint64, n int, uploaded time.Time) archive.Stream {
	t := f.t
	ctx := context.Background()
	id := archive.StreamID(kind, from, to)
	key := archive.StreamKey("zcloud", f.ds, cycle, id)
	res, err := archive.Upload(ctx, archive.UploadInput{Store: f.st, Key: key, Source: bytes.NewReader(objstoretest.Data(to, n)),
		Recipients: []age.Recipient{f.owner.Recipient()}, Class: objstore.Class(f.a.Config.Archive.Store.Class)})
	if err != nil {
		t.Fatal(err)
	}
	s := archive.NewStream(kind, archivetypes.SnapRef{Name: fmt.Sprintf("s%d", from), GUID: from}, archivetypes.SnapRef{Name: fmt.Sprintf("s%d", to), GUID: to}, cycle, false, res, uploaded)
	if kind == archivetypes.Full {
		s.From = archivetypes.SnapRef{}
	}
	m, err := archive.LoadManifest(ctx, f.st, "zcloud", f.ds, f.host)
	if err != nil {
		m = archive.NewManifest(f.ds)
	}
	if err := m.AddStream(s); err != nil {
		t.Fatal(err)
	}
	if err := archive.SaveManifest(ctx, f.st, "zcloud", m, time.Now(), f.owner.Recipient(), f.host.Recipient()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *archiveFixture) manifest() *archive.Manifest {
	m, err := archive.LoadManifest(context.Background(), f.st, "zcloud", f.ds, f.owner)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func TestCheckArchiveCycleSanityAndVerifiedMark(t *testing.T) {
	f := newArchiveFixture(t, objstore.Glacier)
	old := time.Now().Add(-100 * 24 * time.Hour)
	f.add(archivetypes.Full, "c1", 0, 1, 3<<20, old)
	f.add(archivetypes.Full, "c2", 0, 2, 1<<20, time.Now()) // a third of the previous full

	v, err := f.env.ExecuteActivity(f.a.CheckArchiveCycle, contract.CycleCheckRequest{Dataset: f.ds, Cycle: "c2", SanityMinPercent: 50})
	if err != nil {
		t.Fatal(err)
	}
	var chk contract.CycleCheck
	v.Get(&chk)
	if chk.Verified || !strings.Contains(chk.Sanity, "at least 50%") || chk.PrevFullBytes != 3<<20 {
		t.Fatalf("small full passed: %+v", chk)
	}
	if !f.manifest().Cycles[1].Verified.IsZero() {
		t.Fatal("cycle marked verified after a failed sanity check")
	}
	// Nothing may be deleted while the new cycle is unverified, even forced.
	v, err = f.env.ExecuteActivity(f.a.PlanArchiveDeletion, contract.DeletionPlanRequest{Dataset: f.ds, Now: time.Now(), Force: true, MaxDeleteCycles: -1, MaxDeleteBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	var dp contract.DeletionPlan
	v.Get(&dp)
	if len(dp.Delete) != 0 || len(dp.Kept) != 1 || !strings.Contains(dp.Kept[0].Reason, "not verified") {
		t.Fatalf("deletion plan with an unverified cycle: %+v", dp)
	}

	v, err = f.env.ExecuteActivity(f.a.CheckArchiveCycle, contract.CycleCheckRequest{Dataset: f.ds, Cycle: "c2", SanityMinPercent: 50, AcceptSmaller: true})
	if err != nil {
		t.Fatal(err)
	}
	v.Get(&chk)
	if !chk.Verified || f.manifest().Cycles[1].Verified.IsZero() {
		t.Fatalf("accepted full not verified: %+v", chk)
	}
}

func TestCheckArchiveCycleNamesAMissingObject(t *testing.T) {
	f := newArchiveFixture(t, objstore.Standard)
	s := f.add(archivetypes.Full, "c1", 0, 1, 2<<20, time.Now())
	if err := os.Remove(f.st.Path(s.Key)); err != nil {
		t.Fatal(err)
	}
	v, err := f.env.ExecuteActivity(f.a.CheckArchiveCycle, contract.CycleCheckRequest{Dataset: f.ds, Cycle: "c1", SanityMinPercent: 50})
	if err != nil {
		t.Fatal(err)
	}
	var chk contract.CycleCheck
	v.Get(&chk)
	if chk.Verified || len(chk.Problems) != 1 || !strings.Contains(chk.Problems[0], s.Key) {
		t.Fatalf("missing object not reported: %+v", chk)
	}
}

func TestRotationHonoursMinimumStorageUnlessForced(t *testing.T) {
	f := newArchiveFixture(t, objstore.DeepArchive)
	f.add(archivetypes.Full, "c1", 0, 1, 1<<20, time.Now().Add(-100*24*time.Hour)) // < 180 days
	f.add(archivetypes.Incremental, "c1", 1, 2, 1<<19, time.Now().Add(-99*24*time.Hour))
	f.add(archivetypes.Full, "c2", 0, 3, 1<<20, time.Now())
	if _, err := f.env.ExecuteActivity(f.a.CheckArchiveCycle, contract.CycleCheckRequest{Dataset: f.ds, Cycle: "c2", SanityMinPercent: 50}); err != nil {
		t.Fatal(err)
	}
	plan := func(force bool) contract.DeletionPlan {
		v, err := f.env.ExecuteActivity(f.a.PlanArchiveDeletion, contract.DeletionPlanRequest{Dataset: f.ds, Now: time.Now(), Force: force, MaxDeleteCycles: 1, MaxDeleteBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var dp contract.DeletionPlan
		v.Get(&dp)
		return dp
	}
	if dp := plan(false); len(dp.Delete) != 0 || len(dp.Kept) != 1 || !strings.Contains(dp.Kept[0].Reason, "DEEP_ARCHIVE minimum storage") {
		t.Fatalf("deletion before 180 days: %+v", dp)
	}
	dp := plan(true)
	if len(dp.Delete) != 1 || dp.Delete[0].ID != "c1" || !dp.NeedsApproval || !strings.Contains(dp.Verdict, "max_delete_bytes") {
		t.Fatalf("forced plan: %+v", dp)
	}
	old := f.manifest().Cycles[0]
	v, err := f.env.ExecuteActivity(f.a.DeleteArchiveCycles, contract.DeleteCyclesRequest{Dataset: f.ds, PlanID: dp.ID, Cycles: []string{"c1", "c2"}, Now: time.Now(), Force: true})
	if err != nil {
		t.Fatal(err)
	}
	var rep contract.DeletionReport
	v.Get(&rep)
	// c2 is the current cycle: re-checked and refused even though asked for.
	if len(rep.Deleted) != 1 || rep.Objects != 2 || len(rep.Skipped) != 1 || !strings.HasPrefix(rep.Skipped[0], "c2") {
		t.Fatalf("delete report %+v", rep)
	}
	m := f.manifest()
	if len(m.Cycles) != 1 || m.Cycles[0].ID != "c2" {
		t.Fatalf("manifest after deletion: %+v", m.Cycles)
	}
	for _, s := range old.Streams {
		if _, err := f.st.Head(context.Background(), s.Key); err == nil {
			t.Fatalf("%s still stored", s.Key)
		}
	}
	orphans, err := archive.Orphans(context.Background(), f.st, "zcloud", m)
	if err != nil || len(orphans) != 0 {
		t.Fatalf("orphans %v %v", orphans, err)
	}
	// A retry of the same deletion is a no-op.
	if _, err := f.env.ExecuteActivity(f.a.DeleteArchiveCycles, contract.DeleteCyclesRequest{Dataset: f.ds, PlanID: dp.ID, Cycles: []string{"c1"}, Now: time.Now(), Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestPlanArchiveRestoreNeedsTheRightKey(t *testing.T) {
	f := newArchiveFixture(t, objstore.Glacier)
	f.add(archivetypes.Full, "c1", 0, 1, 1<<20, time.Now())
	f.add(archivetypes.Incremental, "c1", 1, 2, 1<<19, time.Now())
	v, err := f.env.ExecuteActivity(f.a.PlanArchiveRestore, contract.RestorePlanRequest{Dataset: f.ds, Identity: "owner", Tier: objstore.Bulk})
	if err != nil {
		t.Fatal(err)
	}
	var p contract.RestorePlan
	v.Get(&p)
	if len(p.Chain) != 2 || p.Snapshot != "s2" || !p.NeedsRestore || len(p.Estimates) != 3 || p.Chosen.Tier != objstore.Bulk || p.Chosen.Objects != 2 {
		t.Fatalf("plan %+v", p)
	}
	// A key that is not a recipient of the manifest: permanent, clear.
	other, _ := age.GenerateX25519Identity()
	os.WriteFile(filepath.Join(f.a.Keys.Dir, "other"), []byte(other.String()), 0o600)
	// A key the config does not name is never read on request.
	_, err = f.env.ExecuteActivity(f.a.PlanArchiveRestore, contract.RestorePlanRequest{Dataset: f.ds, Identity: "other", Tier: objstore.Bulk})
	if err == nil || !strings.Contains(err.Error(), `identity: not allowed; key "other"`) || !strings.Contains(err.Error(), contract.ErrTypeNotAllowed) {
		t.Fatalf("unlisted key: %v", err)
	}
	f.a.Config.Archive.RestoreIdentity = "other"
	_, err = f.env.ExecuteActivity(f.a.PlanArchiveRestore, contract.RestorePlanRequest{Dataset: f.ds, Identity: "other", Tier: objstore.Bulk})
	if err == nil || !strings.Contains(err.Error(), "wrong private key") || !strings.Contains(err.Error(), contract.ErrTypeKeyIncorrect) {
		t.Fatalf("wrong key: %v", err)
	}
	if strings.Contains(err.Error(), other.String()) {
		t.Fatal("the key appears in the error")
	}
	f.a.Config.Archive.RestoreIdentity = "absent"
	_, err = f.env.ExecuteActivity(f.a.PlanArchiveRestore, contract.RestorePlanRequest{Dataset: f.ds, Identity: "absent", Tier: objstore.Bulk})
	if err == nil || !strings.Contains(err.Error(), `"absent" is not in this worker's key source`) {
		t.Fatalf("missing key: %v", err)
	}
	f.a.Config.Archive.RestoreIdentity = "owner"
	_, err = f.env.ExecuteActivity(f.a.PlanArchiveRestore, contract.RestorePlanRequest{Dataset: f.ds, Snapshot: "nope", Identity: "owner", Tier: objstore.Bulk})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown snapshot: %v", err)
	}
}

func TestVerifyArchiveStreamFindsCorruption(t *testing.T) {
	f := newArchiveFixture(t, objstore.Standard)
	s := f.add(archivetypes.Full, "c1", 0, 1, 3<<20, time.Now())
	verify := func() contract.VerifyStreamReport {
		v, err := f.env.ExecuteActivity(f.a.VerifyArchiveStream, contract.VerifyStreamRequest{Dataset: f.ds, Cycle: "c1", StreamID: s.ID})
		if err != nil {
			t.Fatal(err)
		}
		var r contract.VerifyStreamReport
		v.Get(&r)
		return r
	}
	if r := verify(); !r.OK || r.Bytes != s.StoredSize {
		t.Fatalf("intact stream: %+v", r)
	}
	fh, _ := os.OpenFile(f.st.Path(s.Key), os.O_RDWR, 0)
	b := make([]byte, 1)
	fh.ReadAt(b, s.Parts[1].Offset+10)
	b[0] ^= 1
	fh.WriteAt(b, s.Parts[1].Offset+10)
	fh.Close()
	r := verify()
	if r.OK || r.Finding == nil || r.Finding.Kind != "corrupt" || r.Finding.Key != s.Key || !strings.Contains(r.Finding.Detail, "part 2") {
		t.Fatalf("damaged stream: %+v", r)
	}
}

// An archive run's limits may be stricter than the config, never looser:
// each is refused, naming the field, by the step that uses it (and all of
// them by PlanArchive, before anything is sent).
func TestArchiveLimitsNoLooserThanTheConfig(t *testing.T) {
	f := newArchiveFixture(t, objstore.Glacier)
	ar := &f.a.Config.Archive
	ar.AllowForce, ar.AllowAcceptSmaller = false, false
	one, mib := 1, int64(1<<20)
	ar.MaxDeleteCycles, ar.MaxDeleteBytes = &one, &mib
	ok := contract.ArchiveLimits{SanityMinPercent: 50, MaxDeleteCycles: 1, MaxDeleteBytes: 1 << 20}
	cycle := 30 * 24 * time.Hour
	for field, l := range map[string]contract.ArchiveLimits{
		"sanity_min_percent": {SanityMinPercent: 10, MaxDeleteCycles: 1, MaxDeleteBytes: 1 << 20},
		"accept_smaller":     {SanityMinPercent: 50, AcceptSmaller: true, MaxDeleteCycles: 1, MaxDeleteBytes: 1 << 20},
		"force":              {SanityMinPercent: 50, Force: true, MaxDeleteCycles: 1, MaxDeleteBytes: 1 << 20},
		"max_delete_cycles":  {SanityMinPercent: 50, MaxDeleteCycles: -1, MaxDeleteBytes: 1 << 20},
		"max_delete_bytes":   {SanityMinPercent: 50, MaxDeleteCycles: 0, MaxDeleteBytes: 2 << 20},
	} {
		_, err := f.env.ExecuteActivity(f.a.PlanArchive, contract.ArchivePlanRequest{Dataset: f.ds, Now: time.Now(), Period: cycle, Limits: &l})
		wantNotAllowed(t, err, field)
	}
	_, err := f.env.ExecuteActivity(f.a.PlanArchive, contract.ArchivePlanRequest{Dataset: f.ds, Now: time.Now(), Period: time.Hour, Limits: &ok})
	wantNotAllowed(t, err, "cycle")
	_, err = f.env.ExecuteActivity(f.a.CheckArchiveCycle, contract.CycleCheckRequest{Dataset: f.ds, Cycle: "c1", SanityMinPercent: 0})
	wantNotAllowed(t, err, "sanity_min_percent")
	_, err = f.env.ExecuteActivity(f.a.PlanArchiveDeletion, contract.DeletionPlanRequest{Dataset: f.ds, Now: time.Now(), MaxDeleteCycles: 2, MaxDeleteBytes: 0})
	wantNotAllowed(t, err, "max_delete_cycles")
	_, err = f.env.ExecuteActivity(f.a.DeleteArchiveCycles, contract.DeleteCyclesRequest{Dataset: f.ds, Cycles: []string{"c1"}, Now: time.Now(), Force: true})
	wantNotAllowed(t, err, "force")

	// A request's time in the future cannot end a minimum storage early:
	// c1 (GLACIER, 90 days) was uploaded 10 days ago.
	f.add(archivetypes.Full, "c1", 0, 1, 1<<20, time.Now().Add(-10*24*time.Hour))
	f.add(archivetypes.Full, "c2", 0, 2, 1<<20, time.Now())
	if _, err := f.env.ExecuteActivity(f.a.CheckArchiveCycle, contract.CycleCheckRequest{Dataset: f.ds, Cycle: "c2", SanityMinPercent: 50}); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(365 * 24 * time.Hour)
	v, err := f.env.ExecuteActivity(f.a.DeleteArchiveCycles, contract.DeleteCyclesRequest{Dataset: f.ds, Cycles: []string{"c1"}, Now: future})
	if err != nil {
		t.Fatal(err)
	}
	var rep contract.DeletionReport
	v.Get(&rep)
	if len(rep.Deleted) != 0 || len(f.manifest().Cycles) != 2 {
		t.Fatalf("a future time deleted c1 before its minimum storage: %+v", rep)
	}
}
