package retention

import (
	"slices"
	"testing"
	"time"
)

func TestDueKinds(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	all := Policy{Frequent: 4, Hourly: 24, Midday: 7, Daily: 7, Weekly: 4, Monthly: 12, Biannual: 2, Annual: 2, TimeZone: "America/New_York"}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, ny) }
	cases := []struct {
		name      string
		policy    Policy
		now, last time.Time
		want      []Kind
	}{
		{"first run before midday", all, at(2026, 5, 5, 9, 0), time.Time{},
			[]Kind{Frequent, Hourly, Daily, Weekly, Monthly, Biannual, Annual}},
		{"first run after midday", all, at(2026, 5, 5, 12, 0), time.Time{}, Kinds()},
		{"same frequent slot", all, at(2026, 5, 5, 9, 14), at(2026, 5, 5, 9, 0), nil},
		{"next frequent slot", all, at(2026, 5, 5, 9, 15), at(2026, 5, 5, 9, 14), []Kind{Frequent}},
		{"next hour", all, at(2026, 5, 5, 10, 0), at(2026, 5, 5, 9, 59), []Kind{Frequent, Hourly}},
		{"midday reached", all, at(2026, 5, 5, 12, 0), at(2026, 5, 5, 11, 45), []Kind{Frequent, Hourly, Midday}},
		{"midday done", all, at(2026, 5, 5, 13, 0), at(2026, 5, 5, 12, 30), []Kind{Frequent, Hourly}},
		{"next day same week", all, at(2026, 5, 6, 0, 5), at(2026, 5, 5, 23, 59), []Kind{Frequent, Hourly, Daily}},
		{"monday starts a week", all, at(2026, 5, 4, 0, 0), at(2026, 5, 3, 23, 59), []Kind{Frequent, Hourly, Daily, Weekly}},
		{"new half year (a Wednesday)", all, at(2026, 7, 1, 0, 0), at(2026, 6, 30, 23, 0),
			[]Kind{Frequent, Hourly, Daily, Monthly, Biannual}},
		// Dec 31 2026 and Jan 1 2027 share ISO week 2026-W53.
		{"new year mid ISO week", all, at(2027, 1, 1, 0, 0), at(2026, 12, 31, 23, 0),
			[]Kind{Frequent, Hourly, Daily, Monthly, Biannual, Annual}},
		{"daily only, same day", Policy{Daily: 7, TimeZone: "America/New_York"}, at(2026, 5, 5, 23, 0), at(2026, 5, 5, 0, 0), nil},
		// Local dates, not UTC dates: 20:00 and 21:00 EDT straddle UTC midnight.
		{"daily is local", Policy{Daily: 7, TimeZone: "America/New_York"}, at(2026, 5, 5, 21, 0), at(2026, 5, 5, 19, 0), nil},
		{"last taken in the future", Policy{Daily: 7, TimeZone: "America/New_York"}, at(2026, 5, 5, 9, 0), at(2027, 5, 5, 9, 0), []Kind{Daily}},
		// Fall back: 01:30 EDT then 01:10 EST read the same hour on the wall but are different hours.
		{"repeated hour is a new hour", Policy{Hourly: 24, TimeZone: "America/New_York"},
			time.Date(2026, 11, 1, 6, 10, 0, 0, time.UTC), time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), []Kind{Hourly}},
		{"leap day is a day", Policy{Daily: 7, Monthly: 3, TimeZone: "America/New_York"}, at(2028, 2, 29, 0, 10), at(2028, 2, 28, 23, 0), []Kind{Daily}},
		{"after leap day a month", Policy{Daily: 7, Monthly: 3, TimeZone: "America/New_York"}, at(2028, 3, 1, 0, 10), at(2028, 2, 29, 23, 0), []Kind{Daily, Monthly}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := DueKinds(tc.policy, ny, tc.now, tc.last)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("DueKinds = %v, want %v", got, tc.want)
			}
			if Due(tc.policy, ny, tc.now, tc.last) != (len(tc.want) > 0) {
				t.Fatalf("Due disagrees with DueKinds")
			}
		})
	}
}

func TestMiddayAcrossDST(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	p := Policy{Midday: 7, TimeZone: "America/New_York"}
	// 16:30 UTC is 11:30 EST on Mar 7 but 12:30 EDT on Mar 8 (spring forward).
	lastMorning := func(d int) time.Time { return time.Date(2026, 3, d, 8, 0, 0, 0, ny) }
	if Due(p, ny, time.Date(2026, 3, 7, 16, 30, 0, 0, time.UTC), lastMorning(7)) {
		t.Errorf("Mar 7 16:30Z is 11:30 EST: midday must not be due")
	}
	if !Due(p, ny, time.Date(2026, 3, 8, 16, 30, 0, 0, time.UTC), lastMorning(8)) {
		t.Errorf("Mar 8 16:30Z is 12:30 EDT: midday must be due")
	}
	if got, want := NextDue(p, ny, lastMorning(7), lastMorning(7)), time.Date(2026, 3, 7, 17, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("NextDue Mar 7 = %v, want %v", got.UTC(), want)
	}
	if got, want := NextDue(p, ny, lastMorning(8), lastMorning(8)), time.Date(2026, 3, 8, 16, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("NextDue Mar 8 = %v, want %v", got.UTC(), want)
	}
}

func TestNextDue(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	london := mustLoad(t, "Europe/London")
	two := 2
	cases := []struct {
		name      string
		policy    Policy
		loc       *time.Location
		now, last time.Time
		want      time.Time
	}{
		{"due now", Policy{Daily: 1}, time.UTC, time.Date(2026, 5, 5, 9, 7, 0, 0, time.UTC), time.Time{},
			time.Date(2026, 5, 5, 9, 7, 0, 0, time.UTC)},
		{"next frequent slot", Policy{Frequent: 4, FrequentMinutes: 20}, time.UTC,
			time.Date(2026, 5, 5, 9, 7, 0, 0, time.UTC), time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC),
			time.Date(2026, 5, 5, 9, 20, 0, 0, time.UTC)},
		{"next hour", Policy{Hourly: 4, Daily: 3}, time.UTC,
			time.Date(2026, 5, 5, 9, 7, 0, 0, time.UTC), time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC),
			time.Date(2026, 5, 5, 10, 0, 0, 0, time.UTC)},
		// Spring forward in New York: the day after 00:00 EST Mar 8 is 00:00 EDT Mar 9, 23 hours later.
		{"daily over a 23h day", Policy{Daily: 3, TimeZone: "America/New_York"}, ny,
			time.Date(2026, 3, 8, 0, 30, 0, 0, ny), time.Date(2026, 3, 8, 0, 0, 0, 0, ny),
			time.Date(2026, 3, 9, 4, 0, 0, 0, time.UTC)},
		{"daily over a 25h day", Policy{Daily: 3, TimeZone: "Europe/London"}, london,
			time.Date(2026, 10, 25, 0, 30, 0, 0, london), time.Date(2026, 10, 25, 0, 0, 0, 0, london),
			time.Date(2026, 10, 26, 0, 0, 0, 0, time.UTC)},
		// 02:00 does not exist in New York on Mar 8 2026: the first instant at or after it is 03:00 EDT.
		{"midday hour in the DST gap", Policy{Midday: 3, MiddayHour: &two, TimeZone: "America/New_York"}, ny,
			time.Date(2026, 3, 8, 0, 30, 0, 0, ny), time.Time{},
			time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)},
		{"weekly sunday start", Policy{Weekly: 3, WeekStart: "sunday"}, time.UTC,
			time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
		{"monthly after a leap day", Policy{Monthly: 3}, time.UTC,
			time.Date(2028, 2, 29, 9, 0, 0, 0, time.UTC), time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"biannual", Policy{Biannual: 3}, time.UTC,
			time.Date(2026, 8, 9, 9, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"annual in Sydney", Policy{Annual: 3, TimeZone: "Australia/Sydney"}, mustLoad(t, "Australia/Sydney"),
			time.Date(2026, 8, 9, 9, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2026, 12, 31, 13, 0, 0, 0, time.UTC)}, // midnight AEDT (+11)
		{"empty policy", Policy{}, time.UTC, time.Date(2026, 8, 9, 9, 0, 0, 0, time.UTC), time.Time{}, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NextDue(tc.policy, tc.loc, tc.now, tc.last)
			if !got.Equal(tc.want) {
				t.Fatalf("NextDue = %v, want %v", got.UTC(), tc.want.UTC())
			}
			if !got.IsZero() && !Due(tc.policy, tc.loc, got, tc.last) {
				t.Fatalf("not Due at NextDue %v", got)
			}
			if before := got.Add(-time.Second); !got.IsZero() && !got.Equal(tc.now) && Due(tc.policy, tc.loc, before, tc.last) {
				t.Fatalf("already Due a second before NextDue")
			}
		})
	}
}
