package retention

import (
	"testing"
	"time"
)

// planDestroying builds a plan over 10 zcloud daily snapshots (plus one
// foreign, which must not count) that destroys the oldest n.
func planDestroying(t *testing.T, n int) PrunePlan {
	t.Helper()
	snaps := []Snapshot{{Name: "manual", Created: day(1).Unix() - 1}}
	for d := 1; d <= 10; d++ {
		snaps = append(snaps, snap(day(d)))
	}
	plan := mustPlan(t, PlanInput{Policy: Policy{Daily: 10 - n}, Location: time.UTC, Now: day(10), Snapshots: snaps})
	if got := len(plan.ToDestroy()); got != n {
		t.Fatalf("fixture destroys %d, want %d", got, n)
	}
	return plan
}

func TestNeedsApproval(t *testing.T) {
	cases := []struct {
		name       string
		destroys   int
		maxCount   int
		maxPercent float64
		want       bool
		why        string
	}{
		{"count at limit", 3, 3, -1, false, "destroys 3 of 10 zcloud snapshots (30.0%): within limits"},
		{"count over limit", 4, 3, -1, true, "destroys 4 of 10 zcloud snapshots (40.0%): more than 3 snapshots"},
		{"percent at limit", 2, -1, 20, false, "destroys 2 of 10 zcloud snapshots (20.0%): within limits"},
		{"percent over limit", 3, -1, 20, true, "destroys 3 of 10 zcloud snapshots (30.0%): more than 20%"},
		{"percent just over", 3, -1, 29.9, true, "destroys 3 of 10 zcloud snapshots (30.0%): more than 29.9%"},
		{"both over", 9, 5, 50, true, "destroys 9 of 10 zcloud snapshots (90.0%): more than 5 snapshots and more than 50%"},
		{"percent only over", 5, 5, 40, true, "destroys 5 of 10 zcloud snapshots (50.0%): more than 40%"},
		{"zero count means any", 1, 0, -1, true, "destroys 1 of 10 zcloud snapshots (10.0%): more than 0 snapshots"},
		{"nothing destroyed", 0, 0, 0, false, "destroys none of 10 zcloud snapshots"},
		{"limits off", 9, -1, -1, false, "destroys 9 of 10 zcloud snapshots (90.0%): within limits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := NeedsApproval(planDestroying(t, tc.destroys), tc.maxCount, tc.maxPercent)
			if got != tc.want || why != tc.why {
				t.Fatalf("NeedsApproval = %v, %q; want %v, %q", got, why, tc.want, tc.why)
			}
		})
	}
}
