// Package retention is zcloud's snapshot policy: when a snapshot is due, how
// zcloud names its snapshots, and which snapshots a prune keeps or destroys.
//
// Everything here is pure and deterministic so that Temporal workflow code can
// call it: no clock, no I/O, no goroutines, no map order in results. Time and
// the time zone always come in as arguments.
//
// # Bucket semantics
//
// Each period kind (frequent, hourly, midday, daily, weekly, monthly, biannual,
// annual) splits time into calendar periods in the policy's time zone. For a
// kind with count K, the buckets are the K most recent periods that contain at
// least one managed snapshot, and each bucket keeps one snapshot: the newest in
// the period, except midday, which keeps the first snapshot taken at or after
// the midday hour that day. Periods with no snapshot are skipped, so downtime
// never shortens history: a policy of 7 dailies keeps 7 snapshots even after a
// month switched off. Periods are calendar periods, not fixed durations: a
// DST day of 23 or 25 hours is one daily period, the repeated hour of a
// fall-back day is two hourly periods, and Feb 29 is an ordinary day.
//
// One snapshot can fill buckets of several kinds at once (the hourly, daily
// and monthly keeper may be the same snapshot), so a run takes at most one
// snapshot. On top of the buckets, the newest snapshot is always kept, and a
// snapshot held by zcloud, protected by the caller (a replication or archive
// chain needs it) or not taken by zcloud is never destroyed.
package retention
