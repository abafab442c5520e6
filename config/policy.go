package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"zcloud/retention"
	"zcloud/zfsname"
)

// Policy defaults a user may leave out.
const (
	DefaultMaxDestroyCount   = 10
	DefaultMaxDestroyPercent = 50.0
	DefaultApprovalTimeout   = 24 * time.Hour
	// minCatchUpWindow is the smallest catch-up window the Temporal server accepts.
	minCatchUpWindow = 10 * time.Second
)

// Policy is one dataset's snapshot policy: which snapshots to keep (the
// retention counts, inline: hourly: 24, daily: 7, ...), when to run, and
// when a prune must wait for a person's approval.
type Policy struct {
	Dataset string `yaml:"dataset"`
	// Counts, frequent_minutes, midday_hour, week_start, recursive, prefix
	// and time_zone, spelled as in retention.Policy.
	retention.Policy `yaml:",inline"`

	// Schedule is the interval between runs of the policy's Temporal
	// Schedule. Default: the finest kind kept (frequent_minutes for
	// frequent, 1h for hourly or midday, 24h for daily and coarser).
	Schedule time.Duration `yaml:"schedule"`
	// CatchUpWindow is how late a run missed while Temporal or the worker
	// was down may still start. Default: one schedule interval (at least
	// 10s): one catch-up run takes whatever is due, so more are useless.
	CatchUpWindow time.Duration `yaml:"catch_up_window"`
	// MaxDestroyCount and MaxDestroyPercent: a prune destroying more than
	// either waits for approval. -1 switches a limit off; 0 makes every
	// destroy need approval. Defaults 10 and 50.
	MaxDestroyCount   *int     `yaml:"max_destroy_count"`
	MaxDestroyPercent *float64 `yaml:"max_destroy_percent"`
	// ApprovalTimeout is how long a prune waits for approval before giving
	// up and destroying nothing. Default 24h.
	ApprovalTimeout time.Duration `yaml:"approval_timeout"`
	// IncludeForeign lets the policy prune snapshots zcloud did not name.
	IncludeForeign bool `yaml:"include_foreign"`
	// Protect lists snapshots (names after '@') the prune must keep.
	Protect []Protection `yaml:"protect"`
}

// Protection keeps one snapshot, with the reason shown in plans.
type Protection struct {
	Snapshot string `yaml:"snapshot"`
	Reason   string `yaml:"reason"`
}

// Protections are the policy's protect: entries as a prune plan takes
// them (the reason defaults to "protected in the config").
func (p Policy) Protections() []retention.Protection {
	var out []retention.Protection
	for _, pr := range p.Protect {
		reason := pr.Reason
		if reason == "" {
			reason = "protected in the config"
		}
		out = append(out, retention.Protection{Name: pr.Snapshot, Reason: reason})
	}
	return out
}

// FinestPeriod is the length of the finest period the policy keeps
// snapshots for, capped at 24h (months are not fixed lengths, and a daily
// check costs nothing when nothing is due).
func FinestPeriod(p retention.Policy) time.Duration {
	p = p.WithDefaults()
	switch {
	case p.Frequent > 0:
		return time.Duration(p.FrequentMinutes) * time.Minute
	case p.Hourly > 0, p.Midday > 0:
		return time.Hour
	}
	return 24 * time.Hour
}

func (p *Policy) applyDefaults() {
	p.Policy = p.Policy.WithDefaults()
	if p.Schedule == 0 {
		p.Schedule = FinestPeriod(p.Policy)
	}
	if p.CatchUpWindow == 0 {
		p.CatchUpWindow = max(p.Schedule, minCatchUpWindow)
	}
	if p.MaxDestroyCount == nil {
		n := DefaultMaxDestroyCount
		p.MaxDestroyCount = &n
	}
	if p.MaxDestroyPercent == nil {
		n := DefaultMaxDestroyPercent
		p.MaxDestroyPercent = &n
	}
	if p.ApprovalTimeout == 0 {
		p.ApprovalTimeout = DefaultApprovalTimeout
	}
}

// validate checks one policy; f is its field path ("policies[0]").
func (p Policy) validate(f string) error {
	if _, err := zfsname.ParseDataset(p.Dataset); err != nil {
		return fieldErr(f+".dataset", "%v", err)
	}
	if err := p.Policy.Validate(); err != nil {
		return retentionFieldErr(f, err)
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil {
		return fieldErr(f+".time_zone", "unknown time zone %q: %v", p.TimeZone, err)
	}
	if p.Schedule < time.Second {
		return fieldErr(f+".schedule", "must be at least 1s, got %s", p.Schedule)
	}
	if finest := FinestPeriod(p.Policy); p.Schedule > finest {
		return fieldErr(f+".schedule", "%s is longer than the finest period kept (%s): some periods would get no snapshot", p.Schedule, finest)
	}
	if p.CatchUpWindow < minCatchUpWindow {
		return fieldErr(f+".catch_up_window", "must be at least %s, got %s", minCatchUpWindow, p.CatchUpWindow)
	}
	if *p.MaxDestroyCount < -1 {
		return fieldErr(f+".max_destroy_count", "must be -1 (off) or at least 0, got %d", *p.MaxDestroyCount)
	}
	if v := *p.MaxDestroyPercent; v != -1 && (v < 0 || v > 100) {
		return fieldErr(f+".max_destroy_percent", "must be -1 (off) or 0-100, got %g", v)
	}
	if p.ApprovalTimeout < time.Second {
		return fieldErr(f+".approval_timeout", "must be at least 1s, got %s", p.ApprovalTimeout)
	}
	for i, pr := range p.Protect {
		if _, err := zfsname.ParseSnapshot(p.Dataset + "@" + pr.Snapshot); err != nil || strings.Contains(pr.Snapshot, "@") {
			return fieldErr(fmt.Sprintf("%s.protect[%d].snapshot", f, i), "want a snapshot name (the part after '@'), got %q", pr.Snapshot)
		}
	}
	return nil
}

// retentionFieldErr turns retention's first "policy FIELD: message" error
// into a FieldError under the policy's path.
func retentionFieldErr(f string, err error) error {
	first := err
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) && len(joined.Unwrap()) > 0 {
		first = joined.Unwrap()[0]
	}
	msg := strings.TrimPrefix(first.Error(), "policy ")
	if field, rest, ok := strings.Cut(msg, ": "); ok && !strings.ContainsAny(field, " ") {
		return fieldErr(f+"."+field, "%s", rest)
	}
	return fieldErr(f, "%s", first.Error())
}

// validatePolicies checks each policy and that no two govern the same snapshots.
func (c *Config) validatePolicies() error {
	var errs Errors
	for i, p := range c.Policies {
		errs.add(p.validate(fmt.Sprintf("policies[%d]", i)))
	}
	if len(errs) > 0 {
		return errs.err()
	}
	for i, p := range c.Policies {
		di := zfsname.MustDataset(p.Dataset)
		for j := 0; j < i; j++ {
			q := c.Policies[j]
			dj := zfsname.MustDataset(q.Dataset)
			switch {
			case p.Dataset == q.Dataset:
				return fieldErr(fmt.Sprintf("policies[%d].dataset", i), "%s already has a policy (policies[%d])", p.Dataset, j)
			case p.Prefix == q.Prefix && (q.Recursive && dj.IsAncestorOf(di) || p.Recursive && di.IsAncestorOf(dj)):
				return fieldErr(fmt.Sprintf("policies[%d].prefix", i), "policies[%d] (%s) and this one (%s) would both manage %s_* snapshots of %s: give one another prefix",
					j, q.Dataset, p.Dataset, p.Prefix, deeper(di, dj))
			}
		}
	}
	return nil
}

func deeper(a, b zfsname.Dataset) zfsname.Dataset {
	if a.IsAncestorOf(b) {
		return b
	}
	return a
}

// PolicyFor returns the policy for dataset.
func (c *Config) PolicyFor(dataset string) (Policy, bool) {
	for _, p := range c.Policies {
		if p.Dataset == dataset {
			return p, true
		}
	}
	return Policy{}, false
}
