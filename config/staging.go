package config

import (
	"fmt"
	"strings"
	"time"

	"filippo.io/age"

	"zcloud/zfsname"
)

// Staging is one file-level encrypted staging job (docs/staging.md): every
// file of Source's newest snapshot, age-encrypted to Recipients, kept in
// the Dataset (which then replicates and archives like any other).
type Staging struct {
	Source  string `yaml:"source"`  // the dataset whose snapshots are staged
	Dataset string `yaml:"dataset"` // the staging dataset (mounted; created by you)
	// Recipients are age public keys (age1...). The private keys must NOT
	// be on this host: only a restore or a verify needs one, given then.
	Recipients []string `yaml:"recipients"`
	// Schedule is the interval of `zcloud staging schedule`'s Schedule
	// (0: none; run it with `zcloud staging run`).
	Schedule time.Duration `yaml:"schedule"`
	// AfterSnapshot starts a run after each snapshot the source's policy
	// (policies:) takes, instead of on a schedule of its own.
	AfterSnapshot bool `yaml:"after_snapshot"`
	// Names: keep (the staged tree has the source's names) or encrypt
	// (every name encrypted, deterministically, with NamesKey).
	Names string `yaml:"names"`
	// NamesKey names the names key (64 hex digits) in the worker's key
	// source (keys.dir / keys.command); required with names: encrypt.
	NamesKey string `yaml:"names_key"`
	// Parallel files encrypted at once (default: the CPUs).
	Parallel int `yaml:"parallel"`
}

func (c *Config) applyStagingDefaults() {
	for i := range c.Staging {
		if c.Staging[i].Names == "" {
			c.Staging[i].Names = "keep"
		}
	}
}

func (c *Config) validateStaging() error {
	seen := map[string]bool{}
	for i, s := range c.Staging {
		f := fmt.Sprintf("staging[%d]", i)
		src, err := zfsname.ParseDataset(s.Source)
		if err != nil {
			return fieldErr(f+".source", "%v", err)
		}
		dst, err := zfsname.ParseDataset(s.Dataset)
		if err != nil {
			return fieldErr(f+".dataset", "%v", err)
		}
		if src == dst || strings.HasPrefix(src.String()+"/", dst.String()+"/") {
			return fieldErr(f+".dataset", "%s cannot stage into itself or a parent of its source", dst)
		}
		if seen[s.Source] {
			return fieldErr(f+".source", "%s is staged twice", s.Source)
		}
		seen[s.Source] = true
		if len(s.Recipients) == 0 {
			return fieldErr(f+".recipients", "at least one age public key is required")
		}
		for j, r := range s.Recipients {
			if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(r)), "AGE-SECRET-KEY-") {
				return fieldErr(fmt.Sprintf("%s.recipients[%d]", f, j), "this is a private key: only public keys (age1...) belong on the worker; keep the private key off this host")
			}
			if _, err := age.ParseRecipients(strings.NewReader(r)); err != nil || strings.Contains(r, "\n") {
				return fieldErr(fmt.Sprintf("%s.recipients[%d]", f, j), "not an age public key (age1...): %v", err)
			}
		}
		switch s.Names {
		case "keep":
			if s.NamesKey != "" {
				return fieldErr(f+".names_key", "is only used with names: encrypt")
			}
		case "encrypt":
			if s.NamesKey == "" {
				return fieldErr(f+".names_key", "names: encrypt needs the name of a names key in the key source (64 hex digits, e.g. from `openssl rand -hex 32`)")
			}
			if err := ValidKeyName(s.NamesKey); err != nil {
				return fieldErr(f+".names_key", "%v", err)
			}
		default:
			return fieldErr(f+".names", "must be keep or encrypt, not %q", s.Names)
		}
		if s.Schedule < 0 || (s.Schedule > 0 && s.Schedule < time.Minute) {
			return fieldErr(f+".schedule", "must be 0 (none) or at least 1m, not %s", s.Schedule)
		}
		if s.AfterSnapshot {
			if s.Schedule != 0 {
				return fieldErr(f+".after_snapshot", "choose one: schedule (an interval of its own) or after_snapshot (after each policy snapshot)")
			}
			if _, ok := c.PolicyFor(s.Source); !ok {
				return fieldErr(f+".after_snapshot", "%s has no policies: entry whose snapshots could start the staging", s.Source)
			}
		}
		if s.Parallel < 0 || s.Parallel > 64 {
			return fieldErr(f+".parallel", "must be 0-64, not %d", s.Parallel)
		}
	}
	return nil
}

// StagingFor returns the staging job of source.
func (c *Config) StagingFor(source string) (Staging, bool) {
	for _, s := range c.Staging {
		if s.Source == source {
			return s, true
		}
	}
	return Staging{}, false
}
