package retention

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

func day(d int) time.Time { return time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC) }

// guardFixture: 10 daily zcloud snapshots Nov 1-10 plus foreign ones, under a
// policy keeping 2 dailies, so everything old is a candidate for destruction.
func guardFixture() []Snapshot {
	var snaps []Snapshot
	for d := 1; d <= 10; d++ {
		snaps = append(snaps, snap(day(d)))
	}
	snaps[1].Held = true // Nov 2
	snaps = append(snaps,
		Snapshot{Name: "manual-before-upgrade", Created: day(3).Add(time.Hour).Unix(), GUID: 99, CreateTxg: 1},
		Snapshot{Name: "zfs-auto-snap_daily-2026-11-04-1200", Created: day(4).Add(time.Hour).Unix(), GUID: 98, CreateTxg: 2},
	)
	return snaps
}

func TestGuardsAreNeverDestroyed(t *testing.T) {
	in := PlanInput{
		Policy:    Policy{Daily: 2},
		Location:  time.UTC,
		Now:       day(10),
		Snapshots: guardFixture(),
		Protected: []Protection{
			{Name: SnapshotName("zcloud", day(5)), Reason: "newest common snapshot with target backup1"},
			{Name: SnapshotName("zcloud", day(6)), Reason: "base of the current archive chain"},
			{Name: SnapshotName("zcloud", day(5)), Reason: "newest common snapshot with target backup2"},
		},
	}
	plan := mustPlan(t, in)
	want := map[string][]string{
		SnapshotName("zcloud", day(1)):        {ReasonNoBucket},
		SnapshotName("zcloud", day(2)):        {"held by zcloud"},
		SnapshotName("zcloud", day(3)):        {ReasonNoBucket},
		"manual-before-upgrade":               {"not taken by zcloud"},
		SnapshotName("zcloud", day(4)):        {ReasonNoBucket},
		"zfs-auto-snap_daily-2026-11-04-1200": {"not taken by zcloud"},
		SnapshotName("zcloud", day(5)):        {"newest common snapshot with target backup1", "newest common snapshot with target backup2"},
		SnapshotName("zcloud", day(6)):        {"base of the current archive chain"},
		SnapshotName("zcloud", day(7)):        {ReasonNoBucket},
		SnapshotName("zcloud", day(8)):        {ReasonNoBucket},
		SnapshotName("zcloud", day(9)):        {"daily 2026-11-09 (2 of 2)"},
		SnapshotName("zcloud", day(10)):       {"daily 2026-11-10 (1 of 2)", "newest snapshot"},
	}
	if len(plan.Decisions) != len(want) {
		t.Fatalf("%d decisions, want %d", len(plan.Decisions), len(want))
	}
	for _, d := range plan.Decisions {
		assertNames(t, d.Snapshot.Name, d.Reasons, want[d.Snapshot.Name])
		wantAction := Keep
		if want[d.Snapshot.Name][0] == ReasonNoBucket {
			wantAction = Destroy
		}
		if d.Action != wantAction {
			t.Errorf("%s: action %s, want %s", d.Snapshot.Name, d.Action, wantAction)
		}
	}
	assertNames(t, "order", []string{plan.Decisions[2].Snapshot.Name, plan.Decisions[3].Snapshot.Name},
		[]string{SnapshotName("zcloud", day(3)), "manual-before-upgrade"})
	assertNames(t, "ToDestroy", plan.ToDestroy(), namesAt(day(1), day(3), day(4), day(7), day(8)))
}

func TestIncludeForeign(t *testing.T) {
	in := PlanInput{Policy: Policy{Daily: 2}, Location: time.UTC, Now: day(10), Snapshots: guardFixture(), IncludeForeign: true}
	plan := mustPlan(t, in)
	got := plan.ToDestroy()
	want := []string{SnapshotName("zcloud", day(1)), SnapshotName("zcloud", day(3)), "manual-before-upgrade",
		SnapshotName("zcloud", day(4)), "zfs-auto-snap_daily-2026-11-04-1200",
		SnapshotName("zcloud", day(5)), SnapshotName("zcloud", day(6)), SnapshotName("zcloud", day(7)), SnapshotName("zcloud", day(8))}
	assertNames(t, "destroyed with foreign included", got, want)
	// Held still wins.
	if d := decisionFor(t, plan, SnapshotName("zcloud", day(2))); d.Action != Keep {
		t.Fatalf("held snapshot: %s", d.Action)
	}
}

func TestNewestAlwaysKept(t *testing.T) {
	// Midday-only: the newest (a 09:00 snapshot) is in no bucket, yet kept.
	morning := time.Date(2026, 11, 11, 9, 0, 0, 0, time.UTC)
	snaps := []Snapshot{snap(day(9)), snap(day(10)), snap(morning)}
	plan := mustPlan(t, PlanInput{Policy: Policy{Midday: 1}, Location: time.UTC, Now: morning, Snapshots: snaps})
	assertNames(t, "kept", names(plan, Keep), namesAt(day(10), morning))
	assertNames(t, "newest reasons", decisionFor(t, plan, SnapshotName("zcloud", morning)).Reasons, []string{"newest snapshot"})

	// When the newest is foreign, zcloud's own newest is kept as well.
	snaps = append(snaps, Snapshot{Name: "manual", Created: morning.Add(time.Hour).Unix(), CreateTxg: 1 << 40})
	plan = mustPlan(t, PlanInput{Policy: Policy{Midday: 1}, Location: time.UTC, Now: morning, Snapshots: snaps})
	assertNames(t, "zcloud newest reasons", decisionFor(t, plan, SnapshotName("zcloud", morning)).Reasons, []string{"newest zcloud snapshot"})
	assertNames(t, "foreign newest reasons", decisionFor(t, plan, "manual").Reasons, []string{"newest snapshot", "not taken by zcloud"})
	assertNames(t, "destroyed", plan.ToDestroy(), namesAt(day(9)))
}

// Two snapshots in the same second are ordered by createtxg.
func TestSameSecondOrderedByTxg(t *testing.T) {
	a := Snapshot{Name: "zcloud_20261110T120000Z", Created: day(10).Unix(), CreateTxg: 20}
	b := Snapshot{Name: "manual", Created: day(10).Unix(), CreateTxg: 10}
	plan := mustPlan(t, PlanInput{Policy: Policy{Daily: 1}, Location: time.UTC, Now: day(10), Snapshots: []Snapshot{a, b}})
	assertNames(t, "order", []string{plan.Decisions[0].Snapshot.Name, plan.Decisions[1].Snapshot.Name}, []string{"manual", a.Name})
	assertNames(t, "newest", plan.Decisions[1].Reasons, []string{"daily 2026-11-10 (1 of 1)", "newest snapshot"})
}

func TestPlanIsDeterministic(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	snaps := series(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), 37*time.Minute)
	snaps = append(snaps, Snapshot{Name: "manual", Created: snaps[100].Created, GUID: 5, CreateTxg: snaps[100].CreateTxg})
	snaps[7].Held = true
	in := PlanInput{
		Policy:   Policy{Frequent: 4, Hourly: 24, Midday: 7, Daily: 14, Weekly: 6, Monthly: 3, Biannual: 2, Annual: 1, TimeZone: "America/New_York"},
		Location: ny, Now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Snapshots: snaps,
		Protected: []Protection{{snaps[3].Name, "b"}, {snaps[3].Name, "a"}, {snaps[9].Name, "c"}, {"gone", "archive base"}},
	}
	first := mustPlan(t, in)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 5; i++ {
		shuffled := in
		shuffled.Snapshots = append([]Snapshot(nil), snaps...)
		rng.Shuffle(len(shuffled.Snapshots), func(a, b int) {
			shuffled.Snapshots[a], shuffled.Snapshots[b] = shuffled.Snapshots[b], shuffled.Snapshots[a]
		})
		shuffled.Protected = append([]Protection(nil), in.Protected...)
		rng.Shuffle(len(shuffled.Protected), func(a, b int) {
			shuffled.Protected[a], shuffled.Protected[b] = shuffled.Protected[b], shuffled.Protected[a]
		})
		again := mustPlan(t, shuffled)
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("plan differs after shuffling input (round %d)", i)
		}
		if first.String() != again.String() {
			t.Fatalf("rendering differs after shuffling input")
		}
	}
	assertNames(t, "protection reasons sorted", decisionFor(t, first, snaps[3].Name).Reasons, []string{"a", "b"})
	assertNames(t, "warnings", first.Warnings, []string{"protected snapshot gone (archive base) does not exist"})
	// The input slice is not reordered.
	if in.Snapshots[0].Name != snaps[0].Name || in.Snapshots[len(snaps)-1].Name != "manual" {
		t.Fatalf("Plan modified its input")
	}
}

func TestPlanRefusesBadInput(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	for _, tc := range []struct {
		name string
		in   PlanInput
		want string
	}{
		{"empty policy", PlanInput{Location: time.UTC}, "policy counts"},
		{"negative count", PlanInput{Policy: Policy{Daily: -1}, Location: time.UTC}, "policy daily"},
		{"no location", PlanInput{Policy: Policy{Daily: 1}}, "no location"},
		{"wrong location", PlanInput{Policy: Policy{Daily: 1, TimeZone: "Europe/London"}, Location: ny}, `location "America/New_York" is not the policy's time_zone "Europe/London"`},
		{"default zone is UTC", PlanInput{Policy: Policy{Daily: 1}, Location: ny}, `time_zone "UTC"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Plan(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Plan error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if plan := mustPlan(t, PlanInput{Policy: Policy{Daily: 1}, Location: time.UTC}); len(plan.Decisions) != 0 {
		t.Fatalf("plan of no snapshots: %+v", plan)
	}
}

// A prefix change makes the old scheme foreign: kept, never destroyed.
func TestOtherPrefixIsForeign(t *testing.T) {
	snaps := []Snapshot{snap(day(1)), snap(day(2))}
	mine := Snapshot{Name: SnapshotName("nightly", day(3)), Created: day(3).Unix(), CreateTxg: 1 << 40}
	plan := mustPlan(t, PlanInput{Policy: Policy{Daily: 1, Prefix: "nightly"}, Location: time.UTC, Now: day(3), Snapshots: append(snaps, mine)})
	assertNames(t, "destroyed", plan.ToDestroy(), nil)
	assertNames(t, "old prefix", decisionFor(t, plan, snaps[0].Name).Reasons, []string{"not taken by zcloud"})
}
