package retention

import (
	"encoding/json"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestValidateAcceptsGoodPolicies(t *testing.T) {
	zero := 0
	for _, p := range []Policy{
		{Daily: 1},
		{Frequent: 4, FrequentMinutes: 5, Hourly: 24, Midday: 7, MiddayHour: &zero, Daily: 7,
			Weekly: 4, Monthly: 12, Biannual: 2, Annual: 5, WeekStart: "Sunday",
			Prefix: "my.pool:snap-1_x", TimeZone: "Australia/Sydney", Recursive: true},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
}

func TestValidateNamesTheBadField(t *testing.T) {
	h := func(v int) *int { return &v }
	cases := []struct {
		name   string
		policy Policy
		want   []string // every fragment must appear
	}{
		{"negative hourly", Policy{Daily: 1, Hourly: -1}, []string{"policy hourly: count must not be negative, got -1"}},
		{"negative annual", Policy{Daily: 1, Annual: -3}, []string{"policy annual:", "-3"}},
		{"empty", Policy{}, []string{"policy counts: policy keeps nothing"}},
		{"frequent minutes", Policy{Daily: 1, FrequentMinutes: 7}, []string{"policy frequent_minutes: must divide 60", "got 7"}},
		{"frequent minutes negative", Policy{Daily: 1, FrequentMinutes: -15}, []string{"policy frequent_minutes:"}},
		{"midday hour", Policy{Daily: 1, MiddayHour: h(24)}, []string{"policy midday_hour: must be 0-23, got 24"}},
		{"week start", Policy{Daily: 1, WeekStart: "mon"}, []string{`policy week_start:`, `"mon"`}},
		{"prefix dash", Policy{Daily: 1, Prefix: "-rf"}, []string{"policy prefix: must not start with '-'"}},
		{"prefix space", Policy{Daily: 1, Prefix: "a b"}, []string{"policy prefix: may contain only", `' '`}},
		{"prefix at", Policy{Daily: 1, Prefix: "a@b"}, []string{"policy prefix:", `'@'`}},
		{"prefix slash", Policy{Daily: 1, Prefix: "a/b"}, []string{"policy prefix:", `'/'`}},
		{"prefix shell", Policy{Daily: 1, Prefix: "$(reboot)"}, []string{"policy prefix:", `'$'`}},
		{"prefix long", Policy{Daily: 1, Prefix: strings.Repeat("a", 65)}, []string{"policy prefix: must be at most 64"}},
		{"time zone", Policy{Daily: 1, TimeZone: "New York"}, []string{"policy time_zone:"}},
		{"two at once", Policy{Daily: -1, Prefix: "-x"}, []string{"policy daily:", "policy prefix:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if err == nil {
				t.Fatalf("Validate = nil, want error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	p := Policy{Daily: 1}.WithDefaults()
	if p.Prefix != "zcloud" || p.TimeZone != "UTC" || p.FrequentMinutes != 15 ||
		p.MiddayHour == nil || *p.MiddayHour != 12 || p.WeekStart != "monday" {
		t.Fatalf("WithDefaults = %+v", p)
	}
	zero := 0
	if got := (Policy{MiddayHour: &zero}).WithDefaults(); *got.MiddayHour != 0 || got.MiddayHour == &zero {
		t.Fatalf("midnight midday hour lost or shared: %v", *got.MiddayHour)
	}
}

func TestPolicyDecodesFromYAMLAndJSON(t *testing.T) {
	src := `
hourly: 24
midday: 7
daily: 7
weekly: 4
monthly: 12
biannual: 2
annual: 3
frequent: 4
frequent_minutes: 15
midday_hour: 13
week_start: sunday
recursive: true
prefix: zc
time_zone: Europe/London
`
	var fromYAML Policy
	if err := yaml.Unmarshal([]byte(src), &fromYAML); err != nil {
		t.Fatal(err)
	}
	want := `{"frequent":4,"hourly":24,"midday":7,"daily":7,"weekly":4,"monthly":12,"biannual":2,"annual":3,` +
		`"frequent_minutes":15,"midday_hour":13,"week_start":"sunday","recursive":true,"prefix":"zc","time_zone":"Europe/London"}`
	got, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("yaml -> json:\n got  %s\n want %s", got, want)
	}
	var fromJSON Policy
	if err := json.Unmarshal(got, &fromJSON); err != nil || *fromJSON.MiddayHour != 13 || fromJSON.TimeZone != "Europe/London" {
		t.Fatalf("json round trip: %+v %v", fromJSON, err)
	}
}
