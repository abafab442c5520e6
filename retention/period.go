package retention

import (
	"fmt"
	"time"
)

// period is one calendar period of a kind. key orders periods of the same
// kind (larger is later) and is equal exactly when two times share a period.
type period struct {
	key   int64
	label string
}

// calendar holds what period arithmetic needs from a defaulted policy.
type calendar struct {
	loc             *time.Location
	frequentMinutes int
	middayHour      int
	weekStart       time.Weekday
}

func newCalendar(p Policy, loc *time.Location) calendar {
	p = p.WithDefaults()
	ws, _ := parseWeekday(p.WeekStart)
	return calendar{loc: loc, frequentMinutes: p.FrequentMinutes, middayHour: *p.MiddayHour, weekStart: ws}
}

// periodOf returns the period of kind k containing t. For midday, ok is false
// when t is before the midday hour and so cannot be that day's midday snapshot.
func (c calendar) periodOf(k Kind, t time.Time) (p period, ok bool) {
	local := t.In(c.loc)
	y, m, d := local.Date()
	dateKey := int64(y)*10000 + int64(m)*100 + int64(d)
	switch k {
	case Frequent:
		start := c.subHourStart(t, c.frequentMinutes)
		return period{start.Unix(), "frequent " + start.In(c.loc).Format("2006-01-02 15:04 MST")}, true
	case Hourly:
		start := c.subHourStart(t, 60)
		return period{start.Unix(), "hourly " + start.In(c.loc).Format("2006-01-02 15:04 MST")}, true
	case Midday:
		if local.Hour() < c.middayHour {
			return period{}, false
		}
		return period{dateKey, "midday " + local.Format("2006-01-02")}, true
	case Daily:
		return period{dateKey, "daily " + local.Format("2006-01-02")}, true
	case Weekly:
		return c.week(local), true
	case Monthly:
		return period{int64(y)*100 + int64(m), fmt.Sprintf("monthly %04d-%02d", y, int(m))}, true
	case Biannual:
		half := 1
		if m > time.June {
			half = 2
		}
		return period{int64(y)*10 + int64(half), fmt.Sprintf("biannual %04d-H%d", y, half)}, true
	case Annual:
		return period{int64(y), fmt.Sprintf("annual %04d", y)}, true
	}
	return period{}, false
}

// subHourStart is the instant the local n-minute slot holding t began. It
// works on instants, so the repeated hour of a fall-back day is two slots.
func (c calendar) subHourStart(t time.Time, minutes int) time.Time {
	local := t.In(c.loc)
	into := time.Duration(local.Minute()%minutes)*time.Minute +
		time.Duration(local.Second())*time.Second + time.Duration(local.Nanosecond())
	return t.Add(-into)
}

// week labels Monday-start weeks by ISO week (so Dec 31 can be in week 1 of
// the next year, or week 53), other starts by the date the week began.
func (c calendar) week(local time.Time) period {
	back := (int(local.Weekday()) - int(c.weekStart) + 7) % 7
	y, m, d := local.Date()
	start := time.Date(y, m, d-back, 12, 0, 0, 0, time.UTC) // noon UTC: pure date arithmetic
	sy, sm, sd := start.Date()
	key := int64(sy)*10000 + int64(sm)*100 + int64(sd)
	if c.weekStart == time.Monday {
		iy, iw := local.ISOWeek()
		return period{key, fmt.Sprintf("weekly %04d-W%02d", iy, iw)}
	}
	return period{key, "weekly from " + start.Format("2006-01-02")}
}

// nextStart is the first instant after t in a later period of kind k
// (midday: the next instant at or after the midday hour on a later day, or
// today if t is before it).
func (c calendar) nextStart(k Kind, t time.Time) time.Time {
	local := t.In(c.loc)
	y, m, d := local.Date()
	switch k {
	case Frequent:
		return c.subHourStart(t, c.frequentMinutes).Add(time.Duration(c.frequentMinutes) * time.Minute)
	case Hourly:
		return c.subHourStart(t, 60).Add(time.Hour)
	case Midday:
		if local.Hour() < c.middayHour {
			return c.firstAtOrAfter(y, m, d, c.middayHour)
		}
		return c.firstAtOrAfter(y, m, d+1, c.middayHour)
	case Daily:
		return c.firstAtOrAfter(y, m, d+1, 0)
	case Weekly:
		back := (int(local.Weekday()) - int(c.weekStart) + 7) % 7
		return c.firstAtOrAfter(y, m, d-back+7, 0)
	case Monthly:
		return c.firstAtOrAfter(y, m+1, 1, 0)
	case Biannual:
		if m <= time.June {
			return c.firstAtOrAfter(y, time.July, 1, 0)
		}
		return c.firstAtOrAfter(y+1, time.January, 1, 0)
	case Annual:
		return c.firstAtOrAfter(y+1, time.January, 1, 0)
	}
	return time.Time{}
}

// firstAtOrAfter is the first instant whose local wall clock reads at least
// hour:00 on the given date. time.Date alone can land before it when that
// wall time falls in a DST gap (it picks the earlier offset).
func (c calendar) firstAtOrAfter(y int, m time.Month, d, hour int) time.Time {
	t := time.Date(y, m, d, hour, 0, 0, 0, c.loc)
	want := time.Date(y, m, d, hour, 0, 0, 0, time.UTC) // the wall time as a comparable value
	for i := 0; i < 24*60 && wallClock(t.In(c.loc)).Before(want); i++ {
		t = t.Add(time.Minute)
	}
	return t
}

// wallClock re-reads a local time's clock fields as if they were UTC.
func wallClock(local time.Time) time.Time {
	y, m, d := local.Date()
	return time.Date(y, m, d, local.Hour(), local.Minute(), local.Second(), local.Nanosecond(), time.UTC)
}
