package retention

import (
	"testing"
	"time"
)

// Dec 31 -> Jan 1 in Sydney, where the year turns 11 hours before UTC's: the
// first two snapshots below are both Dec 31 in UTC but lie in different years.
func TestYearBoundarySydney(t *testing.T) {
	syd := mustLoad(t, "Australia/Sydney")
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, syd) }
	dec30, dec31Late := at(2026, 12, 30, 12, 0), at(2026, 12, 31, 23, 30)
	jan1Early, jan1Noon := at(2027, 1, 1, 0, 30), at(2027, 1, 1, 12, 0)
	jan3, jan4 := at(2027, 1, 3, 22, 0), at(2027, 1, 4, 1, 0)
	all := []time.Time{dec30, at(2026, 12, 31, 12, 0), dec31Late, jan1Early, jan1Noon, jan3, jan4}
	var snaps []Snapshot
	for _, a := range all {
		snaps = append(snaps, snap(a))
	}
	plan := mustPlan(t, PlanInput{
		Policy:   Policy{Daily: 10, Weekly: 10, Monthly: 10, Biannual: 10, Annual: 10, TimeZone: "Australia/Sydney"},
		Location: syd, Now: jan4.Add(time.Minute), Snapshots: snaps,
	})
	assertNames(t, "daily", keepersOf(plan, Daily), namesAt(dec30, dec31Late, jan1Noon, jan3, jan4))
	assertNames(t, "daily labels", labelsOf(plan, Daily),
		[]string{"daily 2026-12-30", "daily 2026-12-31", "daily 2027-01-01", "daily 2027-01-03", "daily 2027-01-04"})
	// Dec 28 2026 - Jan 3 2027 is ISO week 2026-W53; Jan 4 starts 2027-W01.
	assertNames(t, "weekly", keepersOf(plan, Weekly), namesAt(jan3, jan4))
	assertNames(t, "weekly labels", labelsOf(plan, Weekly), []string{"weekly 2026-W53", "weekly 2027-W01"})
	for _, k := range []Kind{Monthly, Biannual, Annual} {
		assertNames(t, string(k), keepersOf(plan, k), namesAt(dec31Late, jan4))
	}
	assertNames(t, "monthly labels", labelsOf(plan, Monthly), []string{"monthly 2026-12", "monthly 2027-01"})
	assertNames(t, "biannual labels", labelsOf(plan, Biannual), []string{"biannual 2026-H2", "biannual 2027-H1"})
	assertNames(t, "annual labels", labelsOf(plan, Annual), []string{"annual 2026", "annual 2027"})
	assertNames(t, "destroyed", names(plan, Destroy), namesAt(at(2026, 12, 31, 12, 0), jan1Early))
	d := decisionFor(t, plan, SnapshotName(DefaultPrefix, dec31Late))
	wantReasons := []string{"daily 2026-12-31 (4 of 10)", "monthly 2026-12 (2 of 10)", "biannual 2026-H2 (2 of 10)", "annual 2026 (2 of 10)"}
	assertNames(t, "Dec 31 reasons", d.Reasons, wantReasons)
}

// Dec 31 2024 is a Tuesday in ISO week 2025-W01, so its weekly bucket is
// shared with Jan 1-5 2025 while every other kind splits at the year.
func TestYearBoundaryISOWeekOne(t *testing.T) {
	at := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	sun, tue, wed := at(2024, 12, 29, 18), at(2024, 12, 31, 18), at(2025, 1, 1, 18)
	plan := mustPlan(t, PlanInput{
		Policy:   Policy{Daily: 1, Weekly: 5, Annual: 5},
		Location: time.UTC, Now: wed, Snapshots: []Snapshot{snap(sun), snap(tue), snap(wed)},
	})
	assertNames(t, "weekly", keepersOf(plan, Weekly), namesAt(sun, wed))
	assertNames(t, "weekly labels", labelsOf(plan, Weekly), []string{"weekly 2024-W52", "weekly 2025-W01"})
	assertNames(t, "annual", keepersOf(plan, Annual), namesAt(tue, wed))
	assertNames(t, "daily", keepersOf(plan, Daily), namesAt(wed))
	assertNames(t, "destroyed", names(plan, Destroy), nil)
}

func TestWeekStartSunday(t *testing.T) {
	at := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, time.UTC) }
	// Sat 21, Sun 22, Mon 23, Sat 28, Sun 29.
	plan := mustPlan(t, PlanInput{
		Policy:   Policy{Weekly: 5, WeekStart: "sunday"},
		Location: time.UTC, Now: at(29, 12),
		Snapshots: []Snapshot{snap(at(21, 9)), snap(at(22, 9)), snap(at(23, 9)), snap(at(28, 9)), snap(at(29, 9))},
	})
	assertNames(t, "weekly", keepersOf(plan, Weekly), namesAt(at(21, 9), at(28, 9), at(29, 9)))
	assertNames(t, "labels", labelsOf(plan, Weekly),
		[]string{"weekly from 2026-11-15", "weekly from 2026-11-22", "weekly from 2026-11-29"})
}

// hourlyDay returns snapshots every step covering one local calendar day.
func hourlyDay(loc *time.Location, y int, m time.Month, d int, step time.Duration) []Snapshot {
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	end := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	return series(start, end.Add(-time.Second), step)
}

func TestDSTDaysHaveCalendarHours(t *testing.T) {
	cases := []struct {
		zone      string
		y         int
		m         time.Month
		d         int
		wantHours int
	}{
		{"America/New_York", 2026, time.March, 8, 23},
		{"America/New_York", 2026, time.November, 1, 25},
		{"Europe/London", 2026, time.March, 29, 23},
		{"Europe/London", 2026, time.October, 25, 25},
		{"America/New_York", 2026, time.March, 9, 24},
	}
	for _, tc := range cases {
		t.Run(tc.zone+" "+time.Date(tc.y, tc.m, tc.d, 0, 0, 0, 0, time.UTC).Format("2006-01-02"), func(t *testing.T) {
			loc := mustLoad(t, tc.zone)
			snaps := hourlyDay(loc, tc.y, tc.m, tc.d, time.Hour)
			if len(snaps) != tc.wantHours {
				t.Fatalf("fixture has %d hourly snapshots, want %d", len(snaps), tc.wantHours)
			}
			plan := mustPlan(t, PlanInput{
				Policy:   Policy{Hourly: 100, Daily: 100, TimeZone: tc.zone},
				Location: loc, Now: time.Unix(snaps[len(snaps)-1].Created, 0), Snapshots: snaps,
			})
			// Every real hour is its own hourly bucket, and the whole day one daily bucket.
			if got := keepersOf(plan, Hourly); len(got) != tc.wantHours || len(names(plan, Destroy)) != 0 {
				t.Fatalf("hourly keepers %d, destroyed %v; want %d and none", len(got), names(plan, Destroy), tc.wantHours)
			}
			assertNames(t, "daily", labelsOf(plan, Daily), []string{"daily " + time.Date(tc.y, tc.m, tc.d, 0, 0, 0, 0, time.UTC).Format("2006-01-02")})
			assertNames(t, "daily keeper", keepersOf(plan, Daily), []string{snaps[len(snaps)-1].Name})
		})
	}
}

// On a fall-back day 01:00-01:59 happens twice; the hours are different
// buckets, each keeping its own newest half-hourly snapshot.
func TestFallBackRepeatedHour(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	u := func(h, min int) time.Time { return time.Date(2026, 11, 1, h, min, 0, 0, time.UTC) }
	// 04:xx UTC = 00:xx EDT, 05:xx = 01:xx EDT, 06:xx = 01:xx EST, 07:xx = 02:xx EST.
	times := []time.Time{u(4, 30), u(5, 0), u(5, 30), u(6, 0), u(6, 30), u(7, 0)}
	var snaps []Snapshot
	for _, t := range times {
		snaps = append(snaps, snap(t))
	}
	plan := mustPlan(t, PlanInput{Policy: Policy{Hourly: 3, TimeZone: "America/New_York"}, Location: ny, Now: u(7, 0), Snapshots: snaps})
	assertNames(t, "hourly", keepersOf(plan, Hourly), namesAt(u(5, 30), u(6, 30), u(7, 0)))
	assertNames(t, "labels", labelsOf(plan, Hourly),
		[]string{"hourly 2026-11-01 01:00 EDT", "hourly 2026-11-01 01:00 EST", "hourly 2026-11-01 02:00 EST"})
	assertNames(t, "destroyed", names(plan, Destroy), namesAt(u(4, 30), u(5, 0), u(6, 0)))
}

// Midday keeps the first snapshot at or after 12:00 local, which is 17:00 UTC
// in winter and 16:00 UTC in summer; London moves by an hour the same way.
func TestMiddayKeepersAcrossDST(t *testing.T) {
	for _, tc := range []struct {
		zone        string
		first, last time.Time // UTC range of hourly snapshots
		want        []time.Time
	}{
		{"America/New_York", time.Date(2026, 3, 7, 5, 0, 0, 0, time.UTC), time.Date(2026, 3, 10, 3, 0, 0, 0, time.UTC),
			[]time.Time{time.Date(2026, 3, 7, 17, 0, 0, 0, time.UTC), time.Date(2026, 3, 8, 16, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC)}},
		{"Europe/London", time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 23, 0, 0, 0, time.UTC),
			[]time.Time{time.Date(2026, 10, 24, 11, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 12, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 12, 0, 0, 0, time.UTC)}},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			loc := mustLoad(t, tc.zone)
			plan := mustPlan(t, PlanInput{
				Policy:   Policy{Midday: 10, TimeZone: tc.zone},
				Location: loc, Now: tc.last, Snapshots: series(tc.first, tc.last, time.Hour),
			})
			assertNames(t, "midday", keepersOf(plan, Midday), namesAt(tc.want...))
		})
	}
}

// Feb 29 is a day like any other: 10 dailies on Mar 5 2028 reach back to Feb 25.
func TestLeapDay(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	noon := func(m time.Month, d int) time.Time { return time.Date(2028, m, d, 12, 0, 0, 0, ny) }
	var snaps []Snapshot
	for d := noon(time.January, 30); !d.After(noon(time.March, 5)); d = d.AddDate(0, 0, 1) {
		snaps = append(snaps, snap(d))
	}
	plan := mustPlan(t, PlanInput{
		Policy:   Policy{Daily: 10, Monthly: 5, Annual: 2, TimeZone: "America/New_York"},
		Location: ny, Now: noon(time.March, 5), Snapshots: snaps,
	})
	var wantDaily []time.Time
	for _, d := range []int{25, 26, 27, 28, 29} {
		wantDaily = append(wantDaily, noon(time.February, d))
	}
	for d := 1; d <= 5; d++ {
		wantDaily = append(wantDaily, noon(time.March, d))
	}
	assertNames(t, "daily", keepersOf(plan, Daily), namesAt(wantDaily...))
	assertNames(t, "monthly", keepersOf(plan, Monthly), namesAt(noon(time.January, 31), noon(time.February, 29), noon(time.March, 5)))
	assertNames(t, "monthly labels", labelsOf(plan, Monthly), []string{"monthly 2028-01", "monthly 2028-02", "monthly 2028-03"})
	assertNames(t, "annual", keepersOf(plan, Annual), namesAt(noon(time.March, 5)))
	if got := decisionFor(t, plan, SnapshotName(DefaultPrefix, noon(time.February, 29))).Reasons; len(got) != 2 ||
		got[0] != "daily 2028-02-29 (6 of 10)" || got[1] != "monthly 2028-02 (2 of 5)" {
		t.Fatalf("Feb 29 reasons = %q", got)
	}
	// 36 snapshots, 10 dailies + Jan 31 kept.
	if got := len(names(plan, Destroy)); got != 36-11 {
		t.Fatalf("destroyed %d, want %d", got, 36-11)
	}
}

// In a half-hour zone local hours start at :30 UTC, so UTC truncation would
// be wrong; frequent slots line up with the local hour too.
func TestHalfHourZoneHoursAndFrequentSlots(t *testing.T) {
	kolkata := mustLoad(t, "Asia/Kolkata") // +05:30
	u := func(h, min int) time.Time { return time.Date(2026, 6, 1, h, min, 0, 0, time.UTC) }
	snaps := series(u(10, 0), u(11, 20), 10*time.Minute) // local 15:30 .. 16:50
	plan := mustPlan(t, PlanInput{
		Policy:   Policy{Frequent: 3, FrequentMinutes: 20, Hourly: 5, TimeZone: "Asia/Kolkata"},
		Location: kolkata, Now: u(11, 20), Snapshots: snaps,
	})
	assertNames(t, "hourly", keepersOf(plan, Hourly), namesAt(u(10, 20), u(11, 20)))
	assertNames(t, "hourly labels", labelsOf(plan, Hourly), []string{"hourly 2026-06-01 15:00 IST", "hourly 2026-06-01 16:00 IST"})
	// 20-minute local slots 16:00, 16:20, 16:40 keep their newest: 16:10, 16:30, 16:50 local.
	assertNames(t, "frequent", keepersOf(plan, Frequent), namesAt(u(10, 40), u(11, 0), u(11, 20)))
	assertNames(t, "frequent labels", labelsOf(plan, Frequent),
		[]string{"frequent 2026-06-01 16:00 IST", "frequent 2026-06-01 16:20 IST", "frequent 2026-06-01 16:40 IST"})
}
