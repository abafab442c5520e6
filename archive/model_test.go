package archive

import (
	"errors"
	"strings"
	"testing"
	"time"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/zfsname"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// chainManifest builds cycles of a full plus n incrementals each; snapshot
// names are "<cycle>-<i>", GUIDs unique.
func chainManifest(t *testing.T, cycles []time.Time, n int) *Manifest {
	t.Helper()
	m := NewManifest(zfsname.MustDataset("tank/data"))
	guid := uint64(100)
	for _, start := range cycles {
		cid := CycleID(start)
		var prev archivetypes.SnapRef
		for i := 0; i <= n; i++ {
			guid++
			to := archivetypes.SnapRef{Name: cid + "-" + string(rune('a'+i)), GUID: guid}
			kind := archivetypes.Full
			if i > 0 {
				kind = archivetypes.Incremental
			}
			s := NewStream(kind, prev, to, cid, false, UploadResult{
				Key: StreamKey("arch", m.Dataset, cid, StreamID(kind, prev.GUID, to.GUID)), Class: objstore.Glacier,
				PlainSize: 1000, StoredSize: 1100,
			}, start.Add(time.Duration(i)*24*time.Hour))
			if err := m.AddStream(s); err != nil {
				t.Fatal(err)
			}
			prev = to
		}
	}
	return m
}

func TestPlanRestore(t *testing.T) {
	m := chainManifest(t, []time.Time{t0, t0.AddDate(0, 3, 0)}, 3)
	chain, err := PlanRestore(m, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 4 || chain[0].Kind != archivetypes.Full || chain[3].To.Name != m.Cycles[1].Streams[3].To.Name {
		t.Fatalf("newest chain: %+v", chain)
	}
	// A snapshot of the old cycle: its full and incrementals up to it.
	target := m.Cycles[0].Streams[2].To.Name
	chain, err = PlanRestore(m, target)
	if err != nil || len(chain) != 3 || chain[2].To.Name != target || chain[0].Cycle != m.Cycles[0].ID {
		t.Fatalf("plan %s: %v %+v", target, err, chain)
	}
	for i := 1; i < len(chain); i++ {
		if chain[i].From.GUID != chain[i-1].To.GUID {
			t.Fatalf("chain link %d broken", i)
		}
	}
	if _, err := PlanRestore(m, "nope"); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("unknown snapshot: %v", err)
	}
}

func TestPlanRestoreGap(t *testing.T) {
	m := chainManifest(t, []time.Time{t0}, 3)
	missing := m.Cycles[0].Streams[2]
	m.Cycles[0].Streams = append(m.Cycles[0].Streams[:2], m.Cycles[0].Streams[3]) // lose an incremental
	_, err := PlanRestore(m, "")
	if !errors.Is(err, ErrBrokenChain) || !strings.Contains(err.Error(), "@"+missing.To.Name) {
		t.Fatalf("gap: %v (want ErrBrokenChain naming @%s)", err, missing.To.Name)
	}
	t.Log(err)
}

func TestAddStreamChecksParent(t *testing.T) {
	m := chainManifest(t, []time.Time{t0}, 1)
	c := m.Current()
	bad := NewStream(archivetypes.Incremental, archivetypes.SnapRef{Name: "elsewhere", GUID: 999}, archivetypes.SnapRef{Name: "x", GUID: 1000}, c.ID, false, UploadResult{}, t0)
	if err := m.AddStream(bad); !errors.Is(err, ErrBrokenChain) {
		t.Fatalf("incremental from a foreign snapshot: %v", err)
	}
	// Re-adding the same stream (a retried activity) replaces it.
	again := c.Streams[1]
	again.StoredSize = 42
	if err := m.AddStream(again); err != nil || len(m.Current().Streams) != 2 || m.Current().Streams[1].StoredSize != 42 {
		t.Fatalf("re-add: %v %+v", err, m.Current().Streams)
	}
}

func TestCycleDue(t *testing.T) {
	m := NewManifest(zfsname.MustDataset("tank/data"))
	period := 30 * 24 * time.Hour
	if !CycleDue(m, t0, period) {
		t.Fatal("an empty manifest needs a full")
	}
	m = chainManifest(t, []time.Time{t0}, 2)
	if CycleDue(m, t0.Add(period-time.Second), period) {
		t.Fatal("cycle due before its period")
	}
	if !CycleDue(m, t0.Add(period), period) {
		t.Fatal("cycle not due after its period")
	}
}

func TestSanityCheck(t *testing.T) {
	prev := Stream{ID: "full-1", PlainSize: 1000}
	if err := SanityCheck(Stream{ID: "full-2", PlainSize: 800}, prev, 80); err != nil {
		t.Fatalf("80%% of previous with min 80%%: %v", err)
	}
	if err := SanityCheck(Stream{ID: "full-2", PlainSize: 799}, prev, 80); err == nil {
		t.Fatal("a full below the floor passed")
	}
	if err := SanityCheck(Stream{ID: "full-1", PlainSize: 1}, Stream{}, 80); err != nil {
		t.Fatalf("first full: %v", err)
	}
}

func TestDeletableCycles(t *testing.T) {
	old, cur := t0, t0.AddDate(0, 1, 0) // a monthly cycle: the old one is 30 days old
	m := chainManifest(t, []time.Time{old, cur}, 2)
	now := cur.Add(time.Hour)
	if d := DeletableCycles(m, now, nil, true, 1); d != nil {
		t.Fatalf("deletable before the new full is verified: %+v", d)
	}
	m.Current().Verified = now
	if d := DeletableCycles(m, now, nil, false, 1); d != nil {
		t.Fatalf("GLACIER cycle deletable before 90 days: %+v", d)
	}
	if d := DeletableCycles(m, now, nil, true, 1); len(d) != 1 || d[0].ID != CycleID(old) {
		t.Fatalf("forced: %+v", d)
	}
	// 90 days after the old cycle's last stream (uploaded at old+2 days).
	later := old.Add(92 * 24 * time.Hour)
	if d := DeletableCycles(m, later, nil, false, 1); len(d) != 1 || d[0].ID != CycleID(old) {
		t.Fatalf("after 90 days: %+v", d)
	}
	if d := DeletableCycles(m, later.Add(-time.Second), nil, false, 1); d != nil {
		t.Fatalf("one second before the last stream's 90 days: %+v", d)
	}
	// DEEP_ARCHIVE needs 180 days.
	for i := range m.Cycles[0].Streams {
		m.Cycles[0].Streams[i].Class = objstore.DeepArchive
	}
	if d := DeletableCycles(m, later, nil, false, 1); d != nil {
		t.Fatalf("DEEP_ARCHIVE deletable at 92 days: %+v", d)
	}
	// Never the current cycle, even forced.
	for _, c := range DeletableCycles(m, later.AddDate(5, 0, 0), nil, true, 1) {
		if c.ID == m.Current().ID {
			t.Fatal("current cycle offered for deletion")
		}
	}
}

// keep_cycles N keeps the current cycle and the N-1 before it; the older
// ones go once their minimum storage is over.
func TestDeletableCyclesKeepsN(t *testing.T) {
	starts := []time.Time{t0, t0.AddDate(0, 1, 0), t0.AddDate(0, 2, 0), t0.AddDate(0, 3, 0)}
	m := chainManifest(t, starts, 2)
	later := t0.AddDate(2, 0, 0)
	m.Current().Verified = later
	ids := func(cs []Cycle) (out []string) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for keep, want := range map[int][]string{
		0: {CycleID(starts[0]), CycleID(starts[1]), CycleID(starts[2])},
		1: {CycleID(starts[0]), CycleID(starts[1]), CycleID(starts[2])},
		2: {CycleID(starts[0]), CycleID(starts[1])},
		3: {CycleID(starts[0])},
		4: nil,
		9: nil,
	} {
		if got := ids(DeletableCycles(m, later, nil, false, keep)); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("keep %d: deletable %v, want %v", keep, got, want)
		}
	}
}

// A cycle's monthly storage cost in its class, per-object overhead and
// parity included.
func TestCycleMonthlyUSD(t *testing.T) {
	const gib = 1 << 30
	c := Cycle{Streams: []Stream{{Class: objstore.DeepArchive, StoredSize: 1000 * gib, Key: "k.zfs.age"}}}
	// 1000 GiB x $0.00099 + one object's 32 KiB (DEEP) + 8 KiB (STANDARD).
	want := 1000*0.00099 + 32.0/(1<<20)*0.00099 + 8.0/(1<<20)*0.023
	if got := c.MonthlyUSD(); got < want-1e-9 || got > want+1e-9 {
		t.Fatalf("DEEP_ARCHIVE 1000 GiB: $%.6f, want $%.6f", got, want)
	}
	// Parity 10+2 over 10 parts of 100 GiB: 20 % more bytes, 12 objects.
	s := Stream{Class: objstore.Glacier, StoredSize: 1000 * gib, Key: "k.zfs.age",
		Parity: &Parity{Data: 10, Parity: 2, ShardSize: 100 * gib, Shards: make([]objstore.Part, 2)}}
	for i := 1; i <= 10; i++ {
		s.Parts = append(s.Parts, objstore.Part{Number: i, Size: 100 * gib})
	}
	c = Cycle{Streams: []Stream{s}}
	want = 1200*0.0036 + 12*(32.0/(1<<20)*0.0036+8.0/(1<<20)*0.023)
	if got := c.MonthlyUSD(); got < want-1e-9 || got > want+1e-9 {
		t.Fatalf("GLACIER 1000 GiB with parity 10+2: $%.6f, want $%.6f", got, want)
	}
}

func TestEstimateOneTiB(t *testing.T) {
	const tib = 1 << 40
	// A 1 TiB chain: a full of 0.9 TiB and three incrementals.
	chain := []Stream{{StoredSize: tib * 9 / 10}, {StoredSize: tib / 30}, {StoredSize: tib / 30}, {StoredSize: tib - tib*9/10 - 2*(tib/30)}}
	cases := []struct {
		class objstore.Class
		tier  objstore.Tier
		usd   float64
		max   time.Duration
	}{
		{objstore.Glacier, objstore.Expedited, 1024*0.03 + 4*0.01, 5 * time.Minute},
		{objstore.Glacier, objstore.StandardTier, 1024*0.01 + 4*0.00005, 5 * time.Hour},
		{objstore.Glacier, objstore.Bulk, 0, 12 * time.Hour},
		{objstore.DeepArchive, objstore.StandardTier, 1024*0.02 + 4*0.0001, 12 * time.Hour},
		{objstore.DeepArchive, objstore.Bulk, 1024*0.0025 + 4*0.000025, 48 * time.Hour},
		{objstore.GlacierIR, objstore.StandardTier, 1024*0.03 + 4*0.00001, 0},
		{VaultClass, objstore.Bulk, 1024*0.0025 + 4*0.000025, 12 * time.Hour},
	}
	for _, c := range cases {
		e, err := Estimate(chain, c.class, c.tier)
		if err != nil {
			t.Fatal(err)
		}
		if e.StoredBytes != tib || e.Objects != 4 || e.MaxWait != c.max || abs(e.RetrievalUSD-c.usd) > 1e-9 {
			t.Errorf("%s %s: %+v, want $%.4f max %s", c.class, c.tier, e, c.usd, c.max)
		}
		t.Log(e)
	}
	if _, err := Estimate(chain, objstore.DeepArchive, objstore.Expedited); err == nil {
		t.Error("DEEP_ARCHIVE has no Expedited tier")
	}
	if n := len(EstimateTiers(chain, objstore.DeepArchive)); n != 2 {
		t.Errorf("DEEP_ARCHIVE tiers: %d", n)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestKeys(t *testing.T) {
	ds := zfsname.MustDataset("tank/home")
	if k := StreamKey("zcloud/", ds, CycleID(t0), StreamID(archivetypes.Incremental, 0xab, 0xcd)); k != "zcloud/tank/home/c20260101T000000Z/incr-00000000000000ab-00000000000000cd.zfs.age" {
		t.Fatal(k)
	}
	if k := ManifestKey("", ds); k != "tank/home/manifest.json" {
		t.Fatal(k)
	}
	if err := objstore.CheckKey(StreamKey("p", ds, CycleID(t0), StreamID(archivetypes.Full, 0, 1))); err != nil {
		t.Fatal(err)
	}
}
