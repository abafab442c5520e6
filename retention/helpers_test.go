package retention

import (
	"slices"
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

// snap makes a zcloud snapshot taken at when; txg follows time so the two
// orders agree, as they do on a real pool.
func snap(when time.Time) Snapshot {
	return Snapshot{
		Name:      SnapshotName(DefaultPrefix, when),
		Created:   when.Unix(),
		GUID:      uint64(when.Unix())*7 + 1,
		CreateTxg: uint64(when.Unix()) / 5,
	}
}

// series makes zcloud snapshots from first to last inclusive, every step.
func series(first, last time.Time, step time.Duration) []Snapshot {
	var out []Snapshot
	for t := first; !t.After(last); t = t.Add(step) {
		out = append(out, snap(t))
	}
	return out
}

func mustPlan(t *testing.T, in PlanInput) PrunePlan {
	t.Helper()
	plan, err := Plan(in)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return plan
}

// names returns the names of decisions with the given action, oldest first.
func names(plan PrunePlan, a Action) []string {
	var out []string
	for _, d := range plan.Decisions {
		if d.Action == a {
			out = append(out, d.Snapshot.Name)
		}
	}
	return out
}

// keepersOf returns the names holding a bucket of kind k, oldest first.
func keepersOf(plan PrunePlan, k Kind) []string {
	var out []string
	for _, d := range plan.Decisions {
		for _, b := range d.Buckets {
			if b.Kind == k {
				out = append(out, d.Snapshot.Name)
			}
		}
	}
	return out
}

// labelsOf returns the bucket labels of kind k, oldest first.
func labelsOf(plan PrunePlan, k Kind) []string {
	var out []string
	for _, d := range plan.Decisions {
		for _, b := range d.Buckets {
			if b.Kind == k {
				out = append(out, b.Label)
			}
		}
	}
	return out
}

func decisionFor(t *testing.T, plan PrunePlan, name string) Decision {
	t.Helper()
	for _, d := range plan.Decisions {
		if d.Snapshot.Name == name {
			return d
		}
	}
	t.Fatalf("no decision for %s", name)
	return Decision{}
}

// namesAt turns local wall times into zcloud names, sorted oldest first.
func namesAt(times ...time.Time) []string {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	out := make([]string, 0, len(times))
	for _, t := range times {
		out = append(out, SnapshotName(DefaultPrefix, t))
	}
	return out
}

func assertNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}
