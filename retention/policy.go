package retention

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults filled in by Policy.WithDefaults.
const (
	DefaultPrefix          = "zcloud"
	DefaultTimeZone        = "UTC"
	DefaultFrequentMinutes = 15
	DefaultMiddayHour      = 12
	DefaultWeekStart       = "monday"
)

// maxPrefixLen leaves room in ZFS's 255-byte name limit for the dataset path
// and the timestamp suffix.
const maxPrefixLen = 64

// Policy says which snapshots of a dataset to keep: a count per period kind.
// A zero count keeps nothing for that kind.
type Policy struct {
	Frequent int `yaml:"frequent" json:"frequent"`
	Hourly   int `yaml:"hourly" json:"hourly"`
	Midday   int `yaml:"midday" json:"midday"`
	Daily    int `yaml:"daily" json:"daily"`
	Weekly   int `yaml:"weekly" json:"weekly"`
	Monthly  int `yaml:"monthly" json:"monthly"`
	Biannual int `yaml:"biannual" json:"biannual"`
	Annual   int `yaml:"annual" json:"annual"`

	// FrequentMinutes is the length of a frequent period; it must divide 60
	// so periods line up with local hours. Default 15.
	FrequentMinutes int `yaml:"frequent_minutes,omitempty" json:"frequent_minutes,omitempty"`
	// MiddayHour is the local hour (0-23) from which a day's midday snapshot
	// may be taken. A pointer because 0 (midnight) is valid. Default 12.
	MiddayHour *int `yaml:"midday_hour,omitempty" json:"midday_hour,omitempty"`
	// WeekStart is the first day of a weekly period ("monday" .. "sunday").
	// Default monday, which makes weekly periods ISO weeks.
	WeekStart string `yaml:"week_start,omitempty" json:"week_start,omitempty"`

	// Recursive snapshots the dataset and its descendants atomically (zfs snapshot -r).
	Recursive bool `yaml:"recursive" json:"recursive"`
	// Prefix starts every snapshot name zcloud takes. Default "zcloud".
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// TimeZone is the IANA name of the zone the calendar periods are in. Default UTC.
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
}

// WithDefaults returns a copy with unset optional fields filled in.
func (p Policy) WithDefaults() Policy {
	if p.Prefix == "" {
		p.Prefix = DefaultPrefix
	}
	if p.TimeZone == "" {
		p.TimeZone = DefaultTimeZone
	}
	if p.FrequentMinutes == 0 {
		p.FrequentMinutes = DefaultFrequentMinutes
	}
	if p.MiddayHour == nil {
		h := DefaultMiddayHour
		p.MiddayHour = &h
	} else {
		h := *p.MiddayHour // copy, so the caller's int is never shared
		p.MiddayHour = &h
	}
	if p.WeekStart == "" {
		p.WeekStart = DefaultWeekStart
	}
	return p
}

// Count returns how many periods of kind k the policy keeps.
func (p Policy) Count(k Kind) int {
	switch k {
	case Frequent:
		return p.Frequent
	case Hourly:
		return p.Hourly
	case Midday:
		return p.Midday
	case Daily:
		return p.Daily
	case Weekly:
		return p.Weekly
	case Monthly:
		return p.Monthly
	case Biannual:
		return p.Biannual
	case Annual:
		return p.Annual
	}
	return 0
}

// Validate reports every problem with the policy (after defaults), each
// naming its field as spelled in the config file. The time zone name is only
// checked for shape: loading it is the caller's I/O.
func (p Policy) Validate() error {
	p = p.WithDefaults()
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy %s: %s", field, fmt.Sprintf(format, args...)))
	}
	total := 0
	for _, k := range Kinds() {
		n := p.Count(k)
		if n < 0 {
			bad(string(k), "count must not be negative, got %d", n)
			continue
		}
		total += n
	}
	if total == 0 && len(errs) == 0 {
		// An empty policy would let a prune destroy every snapshot but the newest.
		bad("counts", "policy keeps nothing: set at least one of %s", kindList())
	}
	if m := p.FrequentMinutes; m < 1 || m > 60 || 60%m != 0 {
		bad("frequent_minutes", "must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60), got %d", m)
	}
	if h := *p.MiddayHour; h < 0 || h > 23 {
		bad("midday_hour", "must be 0-23, got %d", h)
	}
	if _, ok := parseWeekday(p.WeekStart); !ok {
		bad("week_start", "must be a day name like monday or sunday, got %q", p.WeekStart)
	}
	if err := validatePrefix(p.Prefix); err != nil {
		bad("prefix", "%v", err)
	}
	if strings.ContainsAny(p.TimeZone, " \t\n") || strings.HasPrefix(p.TimeZone, "/") {
		bad("time_zone", "must be an IANA zone name like Europe/London, got %q", p.TimeZone)
	}
	return errors.Join(errs...)
}

func kindList() string {
	names := make([]string, 0, len(Kinds()))
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// validatePrefix keeps prefixes inside the ZFS snapshot-name alphabet, and
// away from '-', which zfs would read as an option.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("must not be empty")
	}
	if len(prefix) > maxPrefixLen {
		return fmt.Errorf("must be at most %d characters, got %d", maxPrefixLen, len(prefix))
	}
	if prefix[0] == '-' {
		return fmt.Errorf("must not start with '-', got %q", prefix)
	}
	for _, r := range prefix {
		if !isPrefixChar(r) {
			return fmt.Errorf("may contain only A-Z a-z 0-9 _ . : -, got %q in %q", r, prefix)
		}
	}
	return nil
}

func isPrefixChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '_' || r == '.' || r == ':' || r == '-'
}

func parseWeekday(name string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(name, d.String()) {
			return d, true
		}
	}
	return 0, false
}
