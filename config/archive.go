package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"zcloud/zfsname"
)

// Archive defaults a user may leave out.
const (
	DefaultArchiveCycle      = 30 * 24 * time.Hour
	DefaultSanityMinPercent  = 50.0
	DefaultMaxDeleteCycles   = 1
	DefaultArchiveSchedule   = 24 * time.Hour
	DefaultArchivePrefix     = "zcloud"
	DefaultArchiveDir        = "/var/lib/zcloud/archive" // kind local
	DefaultRestoreDays       = 3
	DefaultMaxRestoreDays    = 30
	DefaultArchivePartSize   = 16 << 20
	DefaultArchiveParallel   = 4
	DefaultArchiveHostKeyRef = "archive-host"
)

// Archive is the cold-archive section (docs/archive.md): where streams go,
// who can decrypt them, which datasets are archived and how cycles rotate.
type Archive struct {
	Store ArchiveStore `yaml:"store"`
	// Recipients are the age public keys (age1...) every stream and manifest
	// is encrypted to. Their private keys are NOT on the backup host: they
	// are needed only to restore.
	Recipients []string `yaml:"recipients"`
	// HostIdentity is the name, in the worker's key source (keys.dir /
	// keys.command), of an age identity the worker keeps so it can read its
	// own manifests. Manifests are encrypted to it too; streams are not.
	HostIdentity string `yaml:"host_identity"`
	// RestoreIdentity is the default key name of the private key used by
	// restores (zcloud restore --identity overrides it). Only the restoring
	// worker needs it in its key source.
	RestoreIdentity string `yaml:"restore_identity"`
	// RestoreTier is the default retrieval tier: Expedited, Standard or Bulk.
	RestoreTier string `yaml:"restore_tier"`
	// RestoreDays is how long restored copies of cold objects stay readable.
	RestoreDays int `yaml:"restore_days"`
	// MaxRestoreTier is the most expensive retrieval tier a restore or
	// drill may ask for (Bulk < Standard < Expedited; default Standard, or
	// restore_tier / verify_tier when one of those is dearer), and
	// MaxRestoreDays the longest a restored copy may be kept readable
	// (default 30): a workflow input chooses within them.
	MaxRestoreTier string `yaml:"max_restore_tier"`
	MaxRestoreDays int    `yaml:"max_restore_days"`
	// RestorePoll overrides the interval between restore-status polls
	// (default from the tier: Expedited 1m, Standard 15m, Bulk 1h).
	RestorePoll time.Duration `yaml:"restore_poll"`
	// SpoolDir holds downloaded parts while they are verified (default: the
	// system temp dir). SpoolWholeStream verifies a whole stream before zfs
	// receive starts (needs room for the largest stream).
	SpoolDir         string `yaml:"spool_dir"`
	SpoolWholeStream bool   `yaml:"spool_whole_stream"`
	// Schedule is the interval between runs of each dataset's archive
	// Schedule (zcloud archive schedule). Default 24h.
	Schedule time.Duration `yaml:"schedule"`
	// VerifySchedule is the interval between restore drills (Verify
	// workflow) per dataset; 0 schedules none. VerifyTier is the retrieval
	// tier drills use for cold objects (default Bulk: cheapest).
	VerifySchedule time.Duration `yaml:"verify_schedule"`
	VerifyTier     string        `yaml:"verify_tier"`
	// Deleting more than MaxDeleteCycles old cycles or more than
	// MaxDeleteBytes stored bytes at once waits for an approval
	// (zcloud archive approve). -1 switches a limit off; 0 makes every
	// deletion wait. Defaults 1 and -1.
	MaxDeleteCycles *int   `yaml:"max_delete_cycles"`
	MaxDeleteBytes  *int64 `yaml:"max_delete_bytes"`
	// Parity, with data > 0, stores every new stream as separate part
	// objects (store.part_size each) plus, per group of data parts, parity
	// Reed-Solomon parity objects: a restore rebuilds up to parity lost or
	// damaged objects per group. It costs parity/data more storage.
	Parity ArchiveParity `yaml:"parity"`
	// ApprovalTimeout: after it an unapproved deletion deletes nothing.
	ApprovalTimeout time.Duration `yaml:"approval_timeout"`
	// AllowForce lets a run delete old cycles before their class's minimum
	// storage duration when it asks to (zcloud archive run --force), and
	// AllowAcceptSmaller lets a run waive the sanity check once
	// (--accept-smaller). Both default to false: a workflow input can make
	// the archive's safety limits stricter than the config, never looser
	// (docs/security.md), so the operator switches a waiver on here, runs
	// it, and switches it off again.
	AllowForce         bool `yaml:"allow_force"`
	AllowAcceptSmaller bool `yaml:"allow_accept_smaller"`
	// Datasets are archived one by one, each with its own chain.
	Datasets []ArchiveDataset `yaml:"datasets"`
}

// ArchiveStore says where objects go.
type ArchiveStore struct {
	// Kind: local (a directory; the default, for trying zcloud out), s3
	// (a bucket with Glacier storage classes) or vault (an existing Glacier
	// vault; closed to new AWS customers since 2025-12-15).
	Kind string `yaml:"kind"`
	// Dir is the local directory (kind local, or the vault's hot companion
	// when no bucket is given).
	Dir string `yaml:"dir"`
	// Bucket holds the objects (s3) or the manifests and vault index (vault).
	Bucket   string `yaml:"bucket"`
	Prefix   string `yaml:"prefix"` // key prefix inside the store, default "zcloud"
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"` // S3/Glacier endpoint override (moto, MinIO)
	// Class of stream objects: GLACIER, DEEP_ARCHIVE or GLACIER_IR (STANDARD
	// is allowed too). Default DEEP_ARCHIVE for s3, GLACIER for vault,
	// STANDARD for local. Manifests are always STANDARD.
	Class string `yaml:"class"`
	Vault string `yaml:"vault"` // vault name (kind vault)
	// PartSize (bytes) and Parallel parts in flight; memory is about
	// (Parallel+1) × PartSize whatever the stream's size.
	PartSize int64 `yaml:"part_size"`
	Parallel int   `yaml:"parallel"`
	// BandwidthLimit caps upload and download bytes per second (0: none).
	BandwidthLimit int64 `yaml:"bandwidth_limit"`
}

// ArchiveParity is the Reed-Solomon layout of new streams: Data parts per
// group and Parity parity objects per group. Data 0 (the default) stores
// each stream as one object.
type ArchiveParity struct {
	Data   int `yaml:"data"`
	Parity int `yaml:"parity"`
}

// ArchiveDataset is one archived dataset.
type ArchiveDataset struct {
	Dataset string `yaml:"dataset"`
	// Cycle is how often a new full stream starts a new cycle: "30d",
	// "90d", "12h". Default 30d.
	Cycle Days `yaml:"cycle"`
	// SanityMinPercent: a new full smaller than this % of the previous full
	// fails the sanity check and the previous cycle is kept. Default 50;
	// 0 switches the check off.
	SanityMinPercent *float64 `yaml:"sanity_min_percent"`
	// KeepCycles is how many cycles rotation keeps: the current one and
	// KeepCycles-1 before it (older ones are deleted once the current full
	// is verified and their minimum storage time is over). Default 1.
	KeepCycles int `yaml:"keep_cycles"`
	// Raw sends natively encrypted datasets as stored (zfs send -w).
	Raw bool `yaml:"raw"`
	// Class overrides archive.store.class for this dataset.
	Class string `yaml:"class"`
}

// Days is a duration that also accepts a day count: "30d", "1d12h", "36h".
type Days time.Duration

// Duration is d as a time.Duration.
func (d Days) Duration() time.Duration { return time.Duration(d) }

func (d Days) String() string {
	t := time.Duration(d)
	if t > 0 && t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
}

// ParseDays parses "30d", "1d12h" or any time.ParseDuration string.
func ParseDays(s string) (Days, error) {
	s = strings.TrimSpace(s)
	var total time.Duration
	if i := strings.Index(s, "d"); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want a day count like 30d", s)
		}
		total = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return Days(total), nil
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration like 30d, 90d or 36h", s)
	}
	return Days(total + rest), nil
}

// UnmarshalYAML reads "30d" or "36h".
func (d *Days) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDays(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the day form.
func (d Days) MarshalYAML() (any, error) { return d.String(), nil }

func (a *Archive) applyDefaults() {
	s := &a.Store
	if s.Kind == "" {
		s.Kind = "local"
	}
	if s.Kind == "local" && s.Dir == "" {
		s.Dir = DefaultArchiveDir
	}
	if s.Prefix == "" {
		s.Prefix = DefaultArchivePrefix
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	if s.Class == "" {
		switch s.Kind {
		case "s3":
			s.Class = "DEEP_ARCHIVE"
		case "vault":
			s.Class = "GLACIER"
		default:
			s.Class = "STANDARD"
		}
	}
	if s.PartSize == 0 {
		s.PartSize = DefaultArchivePartSize
	}
	if s.Parallel == 0 {
		s.Parallel = DefaultArchiveParallel
	}
	if a.HostIdentity == "" {
		a.HostIdentity = DefaultArchiveHostKeyRef
	}
	if a.RestoreTier == "" {
		a.RestoreTier = "Standard"
	}
	if a.VerifyTier == "" {
		a.VerifyTier = "Bulk"
	}
	if a.RestoreDays == 0 {
		a.RestoreDays = DefaultRestoreDays
	}
	if a.MaxRestoreTier == "" {
		a.MaxRestoreTier = "Standard"
		for _, t := range []string{a.RestoreTier, a.VerifyTier} {
			if TierRank(t) > TierRank(a.MaxRestoreTier) {
				a.MaxRestoreTier = t
			}
		}
	}
	if a.MaxRestoreDays == 0 {
		a.MaxRestoreDays = max(DefaultMaxRestoreDays, a.RestoreDays)
	}
	if a.Schedule == 0 {
		a.Schedule = DefaultArchiveSchedule
	}
	if a.MaxDeleteCycles == nil {
		n := DefaultMaxDeleteCycles
		a.MaxDeleteCycles = &n
	}
	if a.MaxDeleteBytes == nil {
		n := int64(-1)
		a.MaxDeleteBytes = &n
	}
	if a.ApprovalTimeout == 0 {
		a.ApprovalTimeout = DefaultApprovalTimeout
	}
	for i := range a.Datasets {
		d := &a.Datasets[i]
		if d.Cycle == 0 {
			d.Cycle = Days(DefaultArchiveCycle)
		}
		if d.SanityMinPercent == nil {
			p := DefaultSanityMinPercent
			d.SanityMinPercent = &p
		}
		if d.Class == "" {
			d.Class = s.Class
		}
		if d.KeepCycles == 0 {
			d.KeepCycles = 1
		}
	}
}

var archiveClasses = map[string]bool{"STANDARD": true, "GLACIER": true, "DEEP_ARCHIVE": true, "GLACIER_IR": true}
var restoreTiers = map[string]bool{"Expedited": true, "Standard": true, "Bulk": true}

// TierRank orders retrieval tiers by cost: Bulk 0, Standard 1,
// Expedited 2; anything else -1.
func TierRank(tier string) int {
	switch tier {
	case "Bulk":
		return 0
	case "Standard":
		return 1
	case "Expedited":
		return 2
	}
	return -1
}

// validate checks the archive section; every error names its field.
func (a Archive) validate() error {
	const f = "archive"
	s := a.Store
	switch s.Kind {
	case "local":
		if s.Dir == "" && len(a.Datasets) > 0 {
			return fieldErr(f+".store.dir", "required for kind local")
		}
	case "s3":
		if s.Bucket == "" {
			return fieldErr(f+".store.bucket", "required for kind s3")
		}
	case "vault":
		if s.Vault == "" {
			return fieldErr(f+".store.vault", "required for kind vault")
		}
		if s.Bucket == "" && s.Dir == "" {
			return fieldErr(f+".store.bucket", "kind vault needs a hot companion for manifests and its index: set bucket (S3, STANDARD) or dir")
		}
	default:
		return fieldErr(f+".store.kind", "must be local, s3 or vault, not %q", s.Kind)
	}
	if strings.HasPrefix(s.Prefix, "/") || strings.Contains(s.Prefix, "..") {
		return fieldErr(f+".store.prefix", "must be a relative key prefix, not %q", s.Prefix)
	}
	if !archiveClasses[s.Class] {
		return fieldErr(f+".store.class", "must be GLACIER, DEEP_ARCHIVE, GLACIER_IR or STANDARD, not %q", s.Class)
	}
	if s.Kind == "vault" && s.Class != "GLACIER" {
		return fieldErr(f+".store.class", "a vault stores GLACIER archives only, not %q", s.Class)
	}
	if s.PartSize < 1<<20 {
		return fieldErr(f+".store.part_size", "must be at least 1 MiB (1048576), got %d", s.PartSize)
	}
	if s.Parallel < 1 || s.Parallel > 64 {
		return fieldErr(f+".store.parallel", "must be 1-64, got %d", s.Parallel)
	}
	if s.BandwidthLimit < 0 {
		return fieldErr(f+".store.bandwidth_limit", "must not be negative")
	}
	if p := a.Parity; p.Data != 0 || p.Parity != 0 {
		if p.Data < 1 || p.Data+max(p.Parity, 0) > 256 {
			return fieldErr(f+".parity.data", "must be 1 to 256-parity (0 with parity 0: no parity), got %d", p.Data)
		}
		if p.Parity < 0 || p.Parity > p.Data {
			return fieldErr(f+".parity.parity", "must be 0 to data (%d), got %d", p.Data, p.Parity)
		}
	}
	for i, r := range a.Recipients {
		if _, err := age.ParseRecipients(strings.NewReader(r)); err != nil || strings.Contains(r, "\n") {
			return fieldErr(fmt.Sprintf("%s.recipients[%d]", f, i), "not an age public key (age1...): %v", err)
		}
	}
	if len(a.Datasets) > 0 && len(a.Recipients) == 0 {
		return fieldErr(f+".recipients", "at least one age public key is required to archive (its private key stays off the backup host)")
	}
	for name, v := range map[string]string{"host_identity": a.HostIdentity, "restore_identity": a.RestoreIdentity} {
		if v != "" && !keyNameOK(v) {
			return fieldErr(f+"."+name, "key name %q: only letters, digits, '_', '.', '-'", v)
		}
	}
	if !restoreTiers[a.RestoreTier] {
		return fieldErr(f+".restore_tier", "must be Expedited, Standard or Bulk, not %q", a.RestoreTier)
	}
	if !restoreTiers[a.VerifyTier] {
		return fieldErr(f+".verify_tier", "must be Expedited, Standard or Bulk, not %q", a.VerifyTier)
	}
	if !restoreTiers[a.MaxRestoreTier] {
		return fieldErr(f+".max_restore_tier", "must be Expedited, Standard or Bulk, not %q", a.MaxRestoreTier)
	}
	for _, t := range [][2]string{{"restore_tier", a.RestoreTier}, {"verify_tier", a.VerifyTier}} {
		if TierRank(t[1]) > TierRank(a.MaxRestoreTier) {
			return fieldErr(f+"."+t[0], "%s is dearer than max_restore_tier %s", t[1], a.MaxRestoreTier)
		}
	}
	if a.MaxRestoreDays < 1 || a.RestoreDays > a.MaxRestoreDays {
		return fieldErr(f+".max_restore_days", "must be at least 1 and at least restore_days (%d), got %d", a.RestoreDays, a.MaxRestoreDays)
	}
	if a.RestoreDays < 1 {
		return fieldErr(f+".restore_days", "must be at least 1, got %d", a.RestoreDays)
	}
	if a.RestorePoll < 0 {
		return fieldErr(f+".restore_poll", "must not be negative")
	}
	if a.Schedule < time.Second {
		return fieldErr(f+".schedule", "must be at least 1s, got %s", a.Schedule)
	}
	if a.VerifySchedule != 0 && a.VerifySchedule < time.Minute {
		return fieldErr(f+".verify_schedule", "must be 0 (none) or at least 1m, got %s", a.VerifySchedule)
	}
	if *a.MaxDeleteCycles < -1 {
		return fieldErr(f+".max_delete_cycles", "must be -1 (off) or at least 0, got %d", *a.MaxDeleteCycles)
	}
	if *a.MaxDeleteBytes < -1 {
		return fieldErr(f+".max_delete_bytes", "must be -1 (off) or at least 0, got %d", *a.MaxDeleteBytes)
	}
	if a.ApprovalTimeout < time.Second {
		return fieldErr(f+".approval_timeout", "must be at least 1s, got %s", a.ApprovalTimeout)
	}
	seen := map[string]int{}
	for i, d := range a.Datasets {
		df := fmt.Sprintf("%s.datasets[%d]", f, i)
		ds, err := zfsname.ParseDataset(d.Dataset)
		if err != nil {
			return fieldErr(df+".dataset", "%v", err)
		}
		if j, dup := seen[ds.String()]; dup {
			return fieldErr(df+".dataset", "%s is already archived by %s.datasets[%d]", ds, f, j)
		}
		seen[ds.String()] = i
		if d.Cycle.Duration() < time.Minute {
			return fieldErr(df+".cycle", "must be at least 1m (e.g. 30d), got %s", d.Cycle)
		}
		if d.KeepCycles < 1 || d.KeepCycles > 1000 {
			return fieldErr(df+".keep_cycles", "must be 1-1000, got %d", d.KeepCycles)
		}
		if p := *d.SanityMinPercent; p < 0 || p > 100 {
			return fieldErr(df+".sanity_min_percent", "must be 0-100, got %g", p)
		}
		if !archiveClasses[d.Class] {
			return fieldErr(df+".class", "must be GLACIER, DEEP_ARCHIVE, GLACIER_IR or STANDARD, not %q", d.Class)
		}
		if s.Kind == "vault" && d.Class != "GLACIER" {
			return fieldErr(df+".class", "a vault stores GLACIER archives only, not %q", d.Class)
		}
	}
	return nil
}

func keyNameOK(s string) bool { return ValidKeyName(s) == nil }

// ValidKeyName refuses a key name the worker's key source (package keys)
// would refuse: 1-128 letters, digits, '_', '.', '-', starting with a
// letter or digit.
func ValidKeyName(name string) error {
	if !keyName.MatchString(name) {
		return fmt.Errorf("key name %q: only letters, digits, '_', '.', '-' (1-128, starting with a letter or digit)", name)
	}
	return nil
}

// ArchiveDatasetFor returns dataset's archive settings.
func (c *Config) ArchiveDatasetFor(dataset string) (ArchiveDataset, bool) {
	for _, d := range c.Archive.Datasets {
		if d.Dataset == dataset {
			return d, true
		}
	}
	return ArchiveDataset{}, false
}

// ArchiveDatasetNames lists the archived datasets in config order.
func (c *Config) ArchiveDatasetNames() []string {
	var n []string
	for _, d := range c.Archive.Datasets {
		n = append(n, d.Dataset)
	}
	return n
}
