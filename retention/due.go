package retention

import "time"

// DueKinds returns the kinds (finest first) whose current period at now has
// no snapshot yet, given lastTaken, the newest snapshot zcloud took (zero if
// none). A run takes one snapshot at now when any kind is due; that snapshot
// then fills the current period of every kind at once.
//
// A lastTaken in a different period counts as not filling now's period even
// when it lies in the future, so a clock that jumped back never stops snapshots.
func DueKinds(p Policy, loc *time.Location, now, lastTaken time.Time) []Kind {
	c := newCalendar(p, loc)
	var due []Kind
	for _, k := range Kinds() {
		if p.Count(k) <= 0 {
			continue
		}
		current, ok := c.periodOf(k, now)
		if !ok {
			continue // before today's midday hour: midday is not due yet
		}
		if lastTaken.IsZero() {
			due = append(due, k)
			continue
		}
		if last, ok := c.periodOf(k, lastTaken); !ok || last.key != current.key {
			due = append(due, k)
		}
	}
	return due
}

// Due reports whether a run at now should take a snapshot.
func Due(p Policy, loc *time.Location, now, lastTaken time.Time) bool {
	return len(DueKinds(p, loc, now, lastTaken)) > 0
}

// NextDue returns the earliest instant at or after now at which Due is true,
// assuming no snapshot is taken meanwhile; zero if the policy keeps nothing.
func NextDue(p Policy, loc *time.Location, now, lastTaken time.Time) time.Time {
	if Due(p, loc, now, lastTaken) {
		return now
	}
	c := newCalendar(p, loc)
	var next time.Time
	for _, k := range Kinds() {
		if p.Count(k) <= 0 {
			continue
		}
		t := c.nextStart(k, now)
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}
