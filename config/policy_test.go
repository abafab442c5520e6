package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExamplePolicy(t *testing.T) {
	c, err := Parse(Example)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Policies) != 1 {
		t.Fatalf("want 1 policy, got %d", len(c.Policies))
	}
	p := c.Policies[0]
	if p.Dataset != "tank/data" || p.Hourly != 24 || p.Annual != 10 || p.TimeZone != "Europe/London" ||
		p.Schedule != 15*time.Minute || *p.MaxDestroyCount != 10 || p.Protect[0].Snapshot != "before-migration" {
		t.Fatalf("unexpected policy: %+v", p)
	}
}

func TestPolicyDefaults(t *testing.T) {
	cases := []struct {
		yaml     string
		schedule time.Duration
		catchUp  time.Duration
	}{
		{"{dataset: tank/a, frequent: 4, frequent_minutes: 5, hourly: 2}", 5 * time.Minute, 5 * time.Minute},
		{"{dataset: tank/a, hourly: 24, daily: 7}", time.Hour, time.Hour},
		{"{dataset: tank/a, midday: 7, monthly: 3}", time.Hour, time.Hour},
		{"{dataset: tank/a, daily: 7}", 24 * time.Hour, 24 * time.Hour},
		{"{dataset: tank/a, monthly: 12, annual: 3}", 24 * time.Hour, 24 * time.Hour},
		{"{dataset: tank/a, frequent: 2, frequent_minutes: 1, schedule: 2s}", 2 * time.Second, 10 * time.Second},
	}
	for _, tc := range cases {
		c, err := Parse([]byte("policies: [" + tc.yaml + "]"))
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		p := c.Policies[0]
		if p.Schedule != tc.schedule || p.CatchUpWindow != tc.catchUp {
			t.Errorf("%s: schedule %s catch-up %s, want %s %s", tc.yaml, p.Schedule, p.CatchUpWindow, tc.schedule, tc.catchUp)
		}
		if *p.MaxDestroyCount != DefaultMaxDestroyCount || *p.MaxDestroyPercent != DefaultMaxDestroyPercent ||
			p.ApprovalTimeout != DefaultApprovalTimeout || p.Prefix != "zcloud" || p.TimeZone != "UTC" {
			t.Errorf("%s: defaults not applied: %+v", tc.yaml, p)
		}
	}
	// Zero is a real value for the thresholds: every destroy needs approval.
	c, err := Parse([]byte("policies: [{dataset: tank/a, daily: 7, max_destroy_count: 0, max_destroy_percent: 0}]"))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Policies[0].MaxDestroyCount != 0 || *c.Policies[0].MaxDestroyPercent != 0 {
		t.Fatalf("explicit zero thresholds replaced: %+v", c.Policies[0])
	}
}

func TestPolicyErrorsNameTheField(t *testing.T) {
	cases := []struct{ yaml, field string }{
		{"{dataset: 'tank/a;rm -rf /', daily: 7}", "policies[0].dataset"},
		{"{dataset: tank/a}", "policies[0].counts"},
		{"{dataset: tank/a, daily: -1}", "policies[0].daily"},
		{"{dataset: tank/a, frequent: 4, frequent_minutes: 7}", "policies[0].frequent_minutes"},
		{"{dataset: tank/a, midday: 4, midday_hour: 24}", "policies[0].midday_hour"},
		{"{dataset: tank/a, daily: 4, prefix: '-x'}", "policies[0].prefix"},
		{"{dataset: tank/a, daily: 4, time_zone: Mars/Olympus_Mons}", "policies[0].time_zone"},
		{"{dataset: tank/a, hourly: 4, schedule: 2h}", "policies[0].schedule"},
		{"{dataset: tank/a, daily: 4, catch_up_window: 1s}", "policies[0].catch_up_window"},
		{"{dataset: tank/a, daily: 4, max_destroy_count: -2}", "policies[0].max_destroy_count"},
		{"{dataset: tank/a, daily: 4, max_destroy_percent: 101}", "policies[0].max_destroy_percent"},
		{"{dataset: tank/a, daily: 4, protect: [{snapshot: 'a@b'}]}", "policies[0].protect[0].snapshot"},
		{"{dataset: tank/a, daily: 4}, {dataset: tank/a, hourly: 4}", "policies[1].dataset"},
		{"{dataset: tank, daily: 4, recursive: true}, {dataset: tank/a, hourly: 4}", "policies[1].prefix"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte("policies: [" + tc.yaml + "]"))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: got %v, want an error naming %s", tc.yaml, err, tc.field)
		}
	}
	// A child with its own prefix under a recursive parent is fine.
	if _, err := Parse([]byte("policies: [{dataset: tank, daily: 4, recursive: true}, {dataset: tank/a, hourly: 4, prefix: fast}]")); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse([]byte("policies: [{dataset: tank/a, daily: 4, hourly_typo: 3}]")); err == nil || !strings.Contains(err.Error(), "hourly_typo") {
		t.Fatalf("unknown policy field accepted: %v", err)
	}
}
