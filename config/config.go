// Package config is zcloud's one configuration file (zcloud.yaml): typed,
// defaulted and validated, with errors that name the bad field.
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"zcloud/retention"
	"zcloud/zfsname"
)

// Config is the whole file.
type Config struct {
	Temporal Temporal          `yaml:"temporal"`
	Log      Log               `yaml:"log"`
	Keys     Keys              `yaml:"keys"`
	Targets  map[string]Target `yaml:"targets"`
	// Replications pair a source dataset with a target.
	Replications []Replication `yaml:"replications"`
	Pools        []Pool        `yaml:"pools"` // EBS-backed pools (pool.go)
	Metrics      Metrics       `yaml:"metrics"`
	// ReceiverBinary is the local zcloud executable installed on targets as
	// the transfer receiver (checked by SHA-256). Empty: the running
	// executable. Set it when targets run another OS or architecture.
	ReceiverBinary string `yaml:"receiver_binary"`
	// Policies are per-dataset snapshot policies (see policy.go).
	Policies []Policy `yaml:"policies"`
	Archive  Archive  `yaml:"archive"` // cold archive and restore (archive.go)
	Notify   Notify   `yaml:"notify"`  // where session failures are reported (see ec2.go)
	// Staging are file-level encrypted staging jobs (staging.go).
	Staging []Staging `yaml:"staging"`
}

// Temporal says how to reach the Temporal server.
type Temporal struct {
	Address   string `yaml:"address"`
	Namespace string `yaml:"namespace"`
	TaskQueue string `yaml:"task_queue"`
	TLS       TLS    `yaml:"tls"`
}

// TLS for the Temporal connection (all empty: plaintext).
type TLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Log settings.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // console or json
}

// Metrics exposes Prometheus metrics from the worker.
type Metrics struct {
	Listen string `yaml:"listen"` // e.g. 127.0.0.1:9464; empty: off
}

// Keys is the worker's key source: secrets are read here, by activities,
// and never travel in workflow payloads.
type Keys struct {
	// Dir holds one file per key name (mode 0600 or stricter).
	Dir string `yaml:"dir"`
	// Command, if set, is run with the key name as its only argument and
	// prints the key on stdout (e.g. ["pass", "show"]).
	Command []string `yaml:"command"`
}

// Target is a host that receives replication streams.
type Target struct {
	// Kind: "static" (an existing SSH host) or "ec2" (launched per session).
	Kind string `yaml:"kind"`
	SSH  SSH    `yaml:"ssh"`
	// Transport: "parallel" (zcloud's encrypted parallel stream) or "ssh".
	Transport string `yaml:"transport"`
	// Streams fixes the number of parallel TCP connections; 0 (the default)
	// lets the sender choose: it opens more while throughput grows, up to 16.
	Streams int `yaml:"streams"`
	// ReceiverPath is where the zcloud receiver binary lives on the target.
	ReceiverPath string `yaml:"receiver_path"`
	// BandwidthLimit in bytes per second (0: unlimited).
	BandwidthLimit int64 `yaml:"bandwidth_limit"`
	// Cipher for transport: parallel: aes-256-gcm (default) or chacha20-poly1305.
	Cipher string `yaml:"cipher"`
	// PortMin..PortMax is the receiver's listening port range (0: any free
	// port), for firewalls.
	PortMin int `yaml:"port_min"`
	PortMax int `yaml:"port_max"`

	EC2 *EC2 `yaml:"ec2"` // kind: ec2 only (see ec2.go)
}

// SSH connection settings for a target.
type SSH struct {
	Host           string        `yaml:"host"`
	Port           int           `yaml:"port"`
	User           string        `yaml:"user"`
	IdentityFile   string        `yaml:"identity_file"`
	KnownHostsFile string        `yaml:"known_hosts_file"`
	HostKey        string        `yaml:"host_key"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Replication sends Source to Target's TargetDataset.
type Replication struct {
	Source        string `yaml:"source"`
	Target        string `yaml:"target"`
	TargetDataset string `yaml:"target_dataset"`
	// Raw sends without decrypting (zfs send -w). A natively encrypted
	// source is sent raw anyway unless AllowPlaintextOnTarget.
	Raw bool `yaml:"raw"`
	// AllowPlaintextOnTarget sends a natively encrypted source decrypted,
	// so the target stores (and can read) plaintext. Off by default.
	AllowPlaintextOnTarget bool `yaml:"allow_plaintext_on_target"`
}

// Defaults for everything a user may leave out.
func Defaults() Config {
	return Config{
		Temporal: Temporal{Address: "127.0.0.1:7233", Namespace: "default", TaskQueue: "zcloud"},
		Log:      Log{Level: "info", Format: "console"},
	}
}

// ErrEmpty is an empty config file (or one of comments only): most likely
// the wrong file, so it is refused rather than taken as all defaults.
var ErrEmpty = errors.New("config: the file is empty (start from `zcloud config example`)")

// Parse reads YAML over the defaults and validates. Every problem is
// reported at once, each with its field path and line: unknown fields (with
// the nearest known name), values of the wrong type, then the semantic
// checks.
func Parse(data []byte) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return nil, ErrEmpty
	}
	lines := map[string]int{}
	if errs := checkNodes(&doc, lines); len(errs) > 0 {
		return nil, errs.err()
	}
	c := Defaults()
	if err := doc.Decode(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.applyEnv(os.Getenv)
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		var errs Errors
		errs.add(err)
		for _, e := range errs {
			var fe *FieldError
			if errors.As(e, &fe) && fe.Line == 0 {
				fe.Line = lineFor(lines, fe.Field)
			}
		}
		return nil, errs.err()
	}
	return &c, nil
}

// Load reads and parses a file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// applyEnv lets the environment override where Temporal is (containers and
// systemd units set these rather than editing the file).
func (c *Config) applyEnv(getenv func(string) string) {
	for env, field := range map[string]*string{
		"ZCLOUD_TEMPORAL_ADDRESS":    &c.Temporal.Address,
		"ZCLOUD_TEMPORAL_NAMESPACE":  &c.Temporal.Namespace,
		"ZCLOUD_TEMPORAL_TASK_QUEUE": &c.Temporal.TaskQueue,
		"ZCLOUD_TEMPORAL_TLS_CA":     &c.Temporal.TLS.CAFile,
		"ZCLOUD_TEMPORAL_TLS_CERT":   &c.Temporal.TLS.CertFile,
		"ZCLOUD_TEMPORAL_TLS_KEY":    &c.Temporal.TLS.KeyFile,
	} {
		if v := getenv(env); v != "" {
			*field = v
		}
	}
}

func (c *Config) applyDefaults() {
	for name, t := range c.Targets {
		if t.Kind == "" {
			t.Kind = "static"
		}
		if t.SSH.Port == 0 {
			t.SSH.Port = 22
		}
		if t.SSH.User == "" {
			t.SSH.User = "root"
		}
		if t.SSH.ConnectTimeout == 0 {
			t.SSH.ConnectTimeout = 15 * time.Second
		}
		if t.Transport == "" {
			t.Transport = "parallel"
		}
		if t.ReceiverPath == "" {
			t.ReceiverPath = "/usr/local/lib/zcloud/zcloud"
		}
		t.EC2.applyDefaultsIfSet()
		c.Targets[name] = t
	}
	for i := range c.Policies {
		c.Policies[i].applyDefaults()
	}
	c.applyPoolDefaults()
	c.Archive.applyDefaults()
	c.applyStagingDefaults()
}

// FieldError names the offending field (and its line, when known).
type FieldError struct {
	Field string
	Line  int
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: line %d: %s: %s", e.Line, e.Field, e.Msg)
	}
	return fmt.Sprintf("config: %s: %s", e.Field, e.Msg)
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks every field and returns every problem found (Errors):
// within one target, pool, policy or section the first, across them all.
func (c *Config) Validate() error {
	var errs Errors
	if c.Temporal.Address == "" {
		errs.add(fieldErr("temporal.address", "required"))
	}
	if c.Temporal.TaskQueue == "" {
		errs.add(fieldErr("temporal.task_queue", "required"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs.add(fieldErr("log.level", "must be debug, info, warn or error, not %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "console", "json":
	default:
		errs.add(fieldErr("log.format", "must be console or json, not %q", c.Log.Format))
	}
	errs.add(c.validatePools())
	errs.add(c.validateSessionPools())
	for _, name := range c.TargetNames() {
		t := c.Targets[name]
		f := "targets." + name
		if err := ValidTargetName(name); err != nil {
			errs.add(fieldErr(f, "%v", err))
			continue
		}
		if err := t.validate(f); err != nil {
			errs.add(err)
			continue
		}
		errs.add(t.validateEC2(f))
	}
	for i, r := range c.Replications {
		f := fmt.Sprintf("replications[%d]", i)
		if err := CheckSnapshotFits(r.Source); err != nil {
			errs.add(fieldErr(f+".source", "%v", err))
		}
		if r.Target == "" {
			errs.add(fieldErr(f+".target", "required: the name of a target under targets: (known: %s)", strings.Join(c.TargetNames(), ", ")))
		} else if _, ok := c.Targets[r.Target]; !ok {
			errs.add(fieldErr(f+".target", "no target named %q (known: %s)", r.Target, strings.Join(c.TargetNames(), ", ")))
		}
		if r.Raw && r.AllowPlaintextOnTarget {
			return fieldErr(f+".allow_plaintext_on_target", "contradicts raw: true (a raw send stores the source's ciphertext)")
		}
		if err := CheckSnapshotFits(r.TargetDataset); err != nil {
			errs.add(fieldErr(f+".target_dataset", "%v", err))
		}
	}
	errs.add(c.Archive.validate())
	errs.add(c.Notify.validate())
	errs.add(c.validatePolicies())
	errs.add(c.validateStaging())
	return errs.err()
}

// lineFor finds the line of path, or of its nearest parent that has one.
func lineFor(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func (t Target) validate(f string) error {
	switch t.Kind {
	case "static", "ec2":
	default:
		return fieldErr(f+".kind", "must be static or ec2, not %q", t.Kind)
	}
	switch t.Transport {
	case "ssh", "parallel":
	default:
		return fieldErr(f+".transport", "must be ssh or parallel, not %q", t.Transport)
	}
	if t.Streams < 0 || t.Streams > 64 {
		return fieldErr(f+".streams", "must be between 1 and 64, or 0 for automatic, not %d", t.Streams)
	}
	if t.Kind == "static" && t.SSH.Host == "" {
		return fieldErr(f+".ssh.host", "required for a static target")
	}
	if t.SSH.Port < 1 || t.SSH.Port > 65535 {
		return fieldErr(f+".ssh.port", "must be 1-65535, not %d", t.SSH.Port)
	}
	if t.Kind == "static" {
		if t.SSH.HostKey == "" && t.SSH.KnownHostsFile == "" {
			return fieldErr(f+".ssh", "set host_key or known_hosts_file: zcloud never trusts an unknown host key")
		}
		if t.SSH.HostKey != "" && t.SSH.KnownHostsFile != "" {
			return fieldErr(f+".ssh", "set host_key or known_hosts_file, not both")
		}
	}
	if t.SSH.IdentityFile == "" {
		return fieldErr(f+".ssh.identity_file", "required")
	}
	if !strings.HasPrefix(t.ReceiverPath, "/") {
		return fieldErr(f+".receiver_path", "must be absolute")
	}
	if _, err := zfsname.ParseDevice(t.ReceiverPath); err != nil {
		// It is run over SSH: no shell metacharacters.
		return fieldErr(f+".receiver_path", "%v", err)
	}
	switch t.Cipher {
	case "", "aes-256-gcm", "chacha20-poly1305":
	default:
		return fieldErr(f+".cipher", "must be aes-256-gcm or chacha20-poly1305, not %q", t.Cipher)
	}
	if t.PortMin < 0 || t.PortMin > 65535 || t.PortMax < 0 || t.PortMax > 65535 || (t.PortMax != 0 && t.PortMax < t.PortMin) {
		return fieldErr(f+".port_min", "port range %d-%d is not valid", t.PortMin, t.PortMax)
	}
	if t.BandwidthLimit < 0 {
		return fieldErr(f+".bandwidth_limit", "must not be negative")
	}
	return nil
}

// targetNameRe: a target name becomes the hold tag zcloud-NAME on the
// source and part of workflow ids, and TARGET:DATASET splits at the colon.
var targetNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ValidTargetName refuses a target name that could not be used in a hold tag.
func ValidTargetName(name string) error {
	if !targetNameRe.MatchString(name) {
		return fmt.Errorf("target name %q: 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit (it names the hold zcloud-NAME)", name)
	}
	return nil
}

// CheckSnapshotFits validates a dataset name and checks that zcloud's
// snapshot names still fit ZFS's 255 bytes once appended, so a name that
// is valid alone is refused here rather than failing at zfs receive.
func CheckSnapshotFits(dataset string) error {
	ds, err := zfsname.ParseDataset(dataset)
	if err != nil {
		return err
	}
	_, err = ds.Snapshot(retention.SnapshotName(retention.DefaultPrefix, time.Time{}))
	return err
}

// Datasets lists every source dataset the config names (replications,
// policies, archive), sorted: the rows of `zcloud status`.
func (c *Config) Datasets() []string {
	seen := map[string]bool{}
	for _, r := range c.Replications {
		seen[r.Source] = true
	}
	for _, p := range c.Policies {
		seen[p.Dataset] = true
	}
	for _, d := range c.Archive.Datasets {
		seen[d.Dataset] = true
	}
	var out []string
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// TargetNames lists target names, sorted.
func (c *Config) TargetNames() []string {
	var n []string
	for k := range c.Targets {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}
