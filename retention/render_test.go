package retention

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The CLI table is compared with testdata/plan.golden; run with
// ZCLOUD_UPDATE_GOLDEN=1 to rewrite it after a deliberate change.
func TestPlanString(t *testing.T) {
	london := mustLoad(t, "Europe/London")
	at := func(d, h int) time.Time { return time.Date(2026, 10, d, h, 0, 0, 0, time.UTC) }
	snaps := []Snapshot{snap(at(24, 9)), snap(at(24, 23)), snap(at(25, 9)), snap(at(25, 23)), snap(at(26, 9))}
	snaps[0].Held = true
	snaps = append(snaps, Snapshot{Name: "before-upgrade", Created: at(25, 10).Unix(), CreateTxg: 1})
	plan := mustPlan(t, PlanInput{
		Policy: Policy{Daily: 2, TimeZone: "Europe/London"}, Location: london, Now: at(26, 9).Add(time.Minute), Snapshots: snaps,
		Protected: []Protection{{SnapshotName("zcloud", at(25, 9)), "newest common snapshot with target backup1"}, {"zcloud_gone", "base of the current archive chain"}},
	})
	got := plan.String()
	golden := filepath.Join("testdata", "plan.golden")
	if os.Getenv("ZCLOUD_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("plan table:\n%s\nwant:\n%s", got, want)
	}
}

// Plans travel through Temporal as JSON (the approval Update shows one), so a
// round trip must keep everything the table and NeedsApproval read.
func TestPlanJSONRoundTrip(t *testing.T) {
	plan := planDestroying(t, 4)
	data, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	var back PrunePlan
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != plan.String() {
		t.Fatalf("table differs after JSON:\n%s\nvs\n%s", back, plan)
	}
	a, whyA := NeedsApproval(plan, 3, -1)
	b, whyB := NeedsApproval(back, 3, -1)
	if a != b || whyA != whyB || !a {
		t.Fatalf("NeedsApproval differs after JSON: %v %q / %v %q", a, whyA, b, whyB)
	}
}
