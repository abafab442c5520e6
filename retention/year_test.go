package retention

import (
	"testing"
	"time"
)

// A realistic year: hourly snapshots on the hour (UTC) through 2026, planned
// in New York at the last one, 18:00 EST on Dec 31. Every expected keeper is
// written as a local wall time, independent of the period arithmetic.
func TestPlanOverAYearOfHourlySnapshots(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // 19:00 EST Dec 31 2025
	last := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)
	snaps := series(first, last, time.Hour)
	if len(snaps) != 8760 {
		t.Fatalf("fixture: %d snapshots", len(snaps))
	}
	policy := Policy{Hourly: 24, Midday: 7, Daily: 30, Weekly: 8, Monthly: 12, Biannual: 4, Annual: 3, TimeZone: "America/New_York"}
	plan := mustPlan(t, PlanInput{Policy: policy, Location: ny, Now: last, Snapshots: snaps})

	local := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, ny) }
	newest := last

	var hourly []time.Time
	for i := 0; i < 24; i++ {
		hourly = append(hourly, last.Add(-time.Duration(i)*time.Hour))
	}
	midday := []time.Time{}
	for d := 25; d <= 31; d++ {
		midday = append(midday, local(2026, time.December, d, 12))
	}
	daily := []time.Time{newest}
	for d := 2; d <= 30; d++ { // 29 full days before today
		daily = append(daily, local(2026, time.December, d, 23))
	}
	weekly := []time.Time{newest} // 2026-W53 (Mon Dec 28 - Sun Jan 3)
	for _, d := range []int{27, 20, 13, 6} {
		weekly = append(weekly, local(2026, time.December, d, 23)) // Sundays
	}
	for _, d := range []int{29, 22, 15} {
		weekly = append(weekly, local(2026, time.November, d, 23))
	}
	monthly := []time.Time{newest}
	for m := time.January; m <= time.November; m++ {
		monthly = append(monthly, local(2026, m+1, 0, 23)) // day 0: last day of month m
	}
	// The first five snapshots are Dec 31 2025 local: a 2025 period exists for
	// every kind, which Monthly (12 of 13 periods) drops and the others keep.
	lastOf2025 := local(2025, time.December, 31, 23)
	biannual := []time.Time{lastOf2025, local(2026, time.June, 30, 23), newest}
	annual := []time.Time{lastOf2025, newest}

	want := map[Kind][]time.Time{Hourly: hourly, Midday: midday, Daily: daily, Weekly: weekly, Monthly: monthly, Biannual: biannual, Annual: annual}
	wantCount := map[Kind]int{Hourly: 24, Midday: 7, Daily: 30, Weekly: 8, Monthly: 12, Biannual: 3, Annual: 2}
	keep := map[string]bool{}
	for k, times := range want {
		if len(times) != wantCount[k] {
			t.Fatalf("test bug: %s expects %d, listed %d", k, wantCount[k], len(times))
		}
		assertNames(t, string(k), keepersOf(plan, k), namesAt(times...))
		for _, n := range namesAt(times...) {
			keep[n] = true
		}
	}
	var wantKeep, wantDestroy []string
	for _, s := range snaps {
		if keep[s.Name] {
			wantKeep = append(wantKeep, s.Name)
		} else {
			wantDestroy = append(wantDestroy, s.Name)
		}
	}
	assertNames(t, "kept", names(plan, Keep), wantKeep)
	if got := names(plan, Destroy); len(got) != len(wantDestroy) || got[0] != wantDestroy[0] || got[len(got)-1] != wantDestroy[len(wantDestroy)-1] {
		t.Fatalf("destroyed %d (%s..%s), want %d", len(got), got[0], got[len(got)-1], len(wantDestroy))
	}
	// Shared keepers, counted by hand: 24 hourly (incl. newest, Dec 30 23:00 and
	// Dec 31 12:00) + 6 more middays + 28 more dailies + 3 more weeklies (Nov
	// 15/22/29) + 11 more monthlies (Jan-Nov) + 1 more biannual (2025) = 73.
	if got := len(names(plan, Keep)); got != 73 || len(wantKeep) != 73 {
		t.Fatalf("kept %d (expected set %d), want 73", got, len(wantKeep))
	}
}
