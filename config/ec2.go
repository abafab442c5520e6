package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"zcloud/zfsname"
)

// EC2 describes a target that lives on EC2 and is switched on for each
// backup session (targets.NAME.ec2, with kind: ec2). See docs/session.md.
type EC2 struct {
	// Region and Endpoint (an override, e.g. a moto_server URL in tests).
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`

	// Mode: launch-terminate (a fresh instance per session) or start-stop
	// (an existing instance, InstanceID, started and stopped).
	Mode       string `yaml:"mode"`
	InstanceID string `yaml:"instance_id"`

	// Launch settings (launch-terminate).
	AMI              string            `yaml:"ami"`
	InstanceType     string            `yaml:"instance_type"`
	SubnetID         string            `yaml:"subnet_id"`
	SecurityGroupIDs []string          `yaml:"security_group_ids"`
	KeyName          string            `yaml:"key_name"`
	Tags             map[string]string `yaml:"tags"`
	// Market: on-demand or spot.
	Market       string `yaml:"market"`
	SpotMaxPrice string `yaml:"spot_max_price"`
	// FallbackInstanceTypes are tried in order on capacity errors.
	FallbackInstanceTypes []string `yaml:"fallback_instance_types"`
	FallbackToOnDemand    bool     `yaml:"fallback_to_on_demand"`
	// SpotInterruptions is how many spot interruptions a session accepts
	// before its replacement instances are launched on demand (default 2).
	SpotInterruptions int `yaml:"spot_interruptions"`
	// Bootstrap is the first-boot script of a launched instance.
	Bootstrap TargetBootstrap `yaml:"bootstrap"`
	// Volumes was a fixed list of EBS volume ids. It is refused with a
	// pointer to what replaced it: the pool's own volume tags (Pool).
	Volumes []string `yaml:"volumes"`

	// Pool is the pool on the instance. When it names an entry under
	// pools:, each session attaches exactly that pool's current volumes
	// (found by their zcloud:pool tag, kept by pool create and grow) to
	// the instance it launched, and detaches them at the end.
	// PoolDeviceDirs are searched by zpool import -d (none: the default
	// search, or the pool's device_dir).
	Pool           string   `yaml:"pool"`
	PoolDeviceDirs []string `yaml:"pool_device_dirs"`
	Unlock         Unlock   `yaml:"unlock"`

	// Prices is the on-demand list price per instance type (USD/hour) for
	// the session's cost line.
	Prices map[string]float64 `yaml:"prices"`
	// IMDSEndpoint is the metadata service base URL as seen from the
	// instance (default http://169.254.169.254), polled over SSH for spot
	// interruption notices every SpotPollInterval (default 5s).
	IMDSEndpoint     string        `yaml:"imds_endpoint"`
	SpotPollInterval time.Duration `yaml:"spot_poll_interval"`
	// PollInterval between EC2 describe calls while waiting (default 5s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// SSHTimeout bounds the wait for SSH after start (default 5m).
	SSHTimeout time.Duration `yaml:"ssh_timeout"`
	// Parallelism is how many datasets replicate at once (default 2).
	Parallelism int `yaml:"parallelism"`
	// Schedule is when the daily session runs.
	Schedule DailySchedule `yaml:"schedule"`
}

// VolumesReplaced is the config error for the retired ec2.volumes list.
const VolumesReplaced = "no longer supported: a fixed volume list goes stale when a pool grows by rolling replace. " +
	"Define the pool under pools: (zcloud pool create makes and tags its volumes) and set ec2.pool to its name: " +
	"each session then attaches the pool's current volumes, found by their zcloud:pool tag (docs/pools.md)"

// Unlock says how the pool's encryption is opened on the instance. The key
// is read from the worker's key source by name and reaches the instance on
// the stdin of the unlock command only.
type Unlock struct {
	// Method: none, zfs (zfs load-key of Dataset, after import), luks
	// (cryptsetup open of each device, before import) or command (Command
	// run with the key on stdin, before import).
	Method  string       `yaml:"method"`
	Key     string       `yaml:"key"`
	Dataset string       `yaml:"dataset"`
	Devices []LUKSDevice `yaml:"devices"`
	Command []string     `yaml:"command"`
	// LockCommand (method command) runs after export; optional.
	LockCommand []string `yaml:"lock_command"`
}

// LUKSDevice is one LUKS device opened as /dev/mapper/<name>.
type LUKSDevice struct {
	Device string `yaml:"device"`
	Name   string `yaml:"name"`
}

// DailySchedule is a time of day in a time zone.
type DailySchedule struct {
	Time     string `yaml:"time"`      // HH:MM, default 02:00
	TimeZone string `yaml:"time_zone"` // IANA name, default UTC
}

// HourMinute parses Time.
func (d DailySchedule) HourMinute() (int, int, error) {
	t, err := time.Parse("15:04", d.Time)
	if err != nil {
		return 0, 0, fmt.Errorf("want HH:MM, got %q", d.Time)
	}
	return t.Hour(), t.Minute(), nil
}

// EC2 modes and markets.
const (
	ModeLaunchTerminate = "launch-terminate"
	ModeStartStop       = "start-stop"
	MarketOnDemand      = "on-demand"
	MarketSpot          = "spot"
)

func (e *EC2) applyDefaults() {
	if e.Mode == "" {
		e.Mode = ModeLaunchTerminate
	}
	if e.Mode == ModeLaunchTerminate {
		e.Bootstrap.applyDefaults()
	}
	if e.Market == "" {
		e.Market = MarketOnDemand
	}
	if e.SpotInterruptions == 0 {
		e.SpotInterruptions = 2
	}
	if e.IMDSEndpoint == "" {
		e.IMDSEndpoint = "http://169.254.169.254"
	}
	if e.SpotPollInterval == 0 {
		e.SpotPollInterval = 5 * time.Second
	}
	if e.SSHTimeout == 0 {
		e.SSHTimeout = 5 * time.Minute
	}
	if e.Parallelism == 0 {
		e.Parallelism = 2
	}
	if e.Unlock.Method == "" {
		e.Unlock.Method = "none"
	}
	if e.Schedule.Time == "" {
		e.Schedule.Time = "02:00"
	}
	if e.Schedule.TimeZone == "" {
		e.Schedule.TimeZone = "UTC"
	}
}

var (
	awsID   = regexp.MustCompile(`^[a-z]+-[0-9a-f]{8,17}$`)
	keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	price   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

func checkID(field, prefix, v string) error {
	if !awsID.MatchString(v) || !strings.HasPrefix(v, prefix+"-") {
		return fieldErr(field, "want an id like %s-0123456789abcdef0, got %q", prefix, v)
	}
	return nil
}

// validateEC2 checks an ec2 target's ec2 section; f is "targets.NAME".
func (t Target) validateEC2(f string) error {
	if t.Kind != "ec2" {
		if t.EC2 != nil {
			return fieldErr(f+".ec2", "only for kind: ec2")
		}
		return nil
	}
	e := t.EC2
	f += ".ec2"
	if e == nil {
		return fieldErr(f, "required for kind: ec2")
	}
	if e.Region == "" {
		return fieldErr(f+".region", "required")
	}
	if e.Endpoint != "" {
		if u, err := url.Parse(e.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr(f+".endpoint", "want an http(s) URL, got %q", e.Endpoint)
		}
	}
	switch e.Mode {
	case ModeLaunchTerminate:
		if e.InstanceID != "" {
			return fieldErr(f+".instance_id", "only for mode: start-stop")
		}
		if e.AMI == "" {
			return fieldErr(f+".ami", "required for mode: launch-terminate")
		}
		if err := checkID(f+".ami", "ami", e.AMI); err != nil {
			return err
		}
		if e.InstanceType == "" {
			return fieldErr(f+".instance_type", "required for mode: launch-terminate")
		}
		if t.SSH.HostKey != "" || t.SSH.KnownHostsFile != "" {
			return fieldErr(f+".mode", "a launched instance gets a fresh host key injected at launch: leave ssh.host_key and ssh.known_hosts_file empty")
		}
		if err := e.Bootstrap.validate(f + ".bootstrap"); err != nil {
			return err
		}
	case ModeStartStop:
		if err := checkID(f+".instance_id", "i", e.InstanceID); err != nil {
			return err
		}
		if t.SSH.HostKey == "" && t.SSH.KnownHostsFile == "" {
			return fieldErr(f+".mode", "start-stop needs the instance's host key pinned (ssh.host_key or ssh.known_hosts_file): zcloud never trusts an unknown host key")
		}
		if e.Market == MarketSpot {
			return fieldErr(f+".market", "start-stop uses an existing instance; market applies to launch-terminate")
		}
		if e.Bootstrap != (TargetBootstrap{}) {
			return fieldErr(f+".bootstrap", "only for mode: launch-terminate (prepare an existing instance as docs/target-image.md describes)")
		}
	default:
		return fieldErr(f+".mode", "must be launch-terminate or start-stop, not %q", e.Mode)
	}
	if e.SubnetID != "" {
		if err := checkID(f+".subnet_id", "subnet", e.SubnetID); err != nil {
			return err
		}
	}
	for i, sg := range e.SecurityGroupIDs {
		if err := checkID(fmt.Sprintf("%s.security_group_ids[%d]", f, i), "sg", sg); err != nil {
			return err
		}
	}
	if len(e.Volumes) > 0 {
		return fieldErr(f+".volumes", "%s", VolumesReplaced)
	}
	for k := range e.Tags {
		if strings.HasPrefix(k, "zcloud:") || strings.HasPrefix(k, "aws:") {
			return fieldErr(f+".tags", "tag %q: the zcloud: and aws: prefixes are reserved", k)
		}
	}
	switch e.Market {
	case MarketOnDemand:
		if e.SpotMaxPrice != "" {
			return fieldErr(f+".spot_max_price", "only for market: spot")
		}
	case MarketSpot:
		if e.SpotMaxPrice != "" && !price.MatchString(e.SpotMaxPrice) {
			return fieldErr(f+".spot_max_price", "want a USD price like 0.05, got %q", e.SpotMaxPrice)
		}
	default:
		return fieldErr(f+".market", "must be on-demand or spot, not %q", e.Market)
	}
	if e.SpotInterruptions < 0 {
		return fieldErr(f+".spot_interruptions", "must not be negative")
	}
	if slices.Contains(e.FallbackInstanceTypes, "") {
		return fieldErr(f+".fallback_instance_types", "empty instance type")
	}
	if _, err := zfsname.ParsePool(e.Pool); err != nil {
		return fieldErr(f+".pool", "%v", err)
	}
	for i, d := range e.PoolDeviceDirs {
		if _, err := zfsname.ParseDevice(d); err != nil {
			return fieldErr(fmt.Sprintf("%s.pool_device_dirs[%d]", f, i), "%v", err)
		}
	}
	if err := e.Unlock.validate(f+".unlock", e.Pool); err != nil {
		return err
	}
	for typ, p := range e.Prices {
		if p < 0 {
			return fieldErr(f+".prices."+typ, "must not be negative")
		}
	}
	if u, err := url.Parse(e.IMDSEndpoint); err != nil || u.Scheme != "http" || u.Host == "" || u.RawQuery != "" ||
		strings.ContainsAny(e.IMDSEndpoint, " '\"$`\\;&|<>") {
		return fieldErr(f+".imds_endpoint", "want an http URL like http://169.254.169.254, got %q", e.IMDSEndpoint)
	}
	if e.SpotPollInterval < 100*time.Millisecond {
		return fieldErr(f+".spot_poll_interval", "must be at least 100ms")
	}
	if e.SSHTimeout < time.Second {
		return fieldErr(f+".ssh_timeout", "must be at least 1s")
	}
	if e.Parallelism < 1 || e.Parallelism > 32 {
		return fieldErr(f+".parallelism", "must be 1-32, not %d", e.Parallelism)
	}
	if _, _, err := e.Schedule.HourMinute(); err != nil {
		return fieldErr(f+".schedule.time", "%v", err)
	}
	if _, err := time.LoadLocation(e.Schedule.TimeZone); err != nil {
		return fieldErr(f+".schedule.time_zone", "unknown time zone %q", e.Schedule.TimeZone)
	}
	return nil
}

func (u Unlock) validate(f, pool string) error {
	needKey := true
	switch u.Method {
	case "none":
		needKey = false
		if u.Key != "" || u.Dataset != "" || len(u.Devices) > 0 || len(u.Command) > 0 {
			return fieldErr(f+".method", "none takes no key, dataset, devices or command")
		}
	case "zfs":
		d, err := zfsname.ParseDataset(u.Dataset)
		if err != nil {
			return fieldErr(f+".dataset", "the encryption root to load the key of: %v", err)
		}
		if d.Pool().String() != pool {
			return fieldErr(f+".dataset", "%s is not in pool %s", u.Dataset, pool)
		}
	case "luks":
		if len(u.Devices) == 0 {
			return fieldErr(f+".devices", "required for method: luks")
		}
		for i, d := range u.Devices {
			if _, err := zfsname.ParseDevice(d.Device); err != nil {
				return fieldErr(fmt.Sprintf("%s.devices[%d].device", f, i), "%v", err)
			}
			if _, err := zfsname.ParseMapperName(d.Name); err != nil {
				return fieldErr(fmt.Sprintf("%s.devices[%d].name", f, i), "%v", err)
			}
		}
	case "command":
		if len(u.Command) == 0 || !strings.HasPrefix(u.Command[0], "/") {
			return fieldErr(f+".command", "want an argv whose first element is an absolute path")
		}
	default:
		return fieldErr(f+".method", "must be none, zfs, luks or command, not %q", u.Method)
	}
	if len(u.LockCommand) > 0 && (u.Method != "command" || !strings.HasPrefix(u.LockCommand[0], "/")) {
		return fieldErr(f+".lock_command", "only for method: command, as an argv starting with an absolute path")
	}
	if needKey && !keyName.MatchString(u.Key) {
		return fieldErr(f+".key", "the key's name in the worker's key source (letters, digits, '_', '.', '-'), got %q", u.Key)
	}
	return nil
}

// Notify says where failure notifications go (both may be set).
type Notify struct {
	SNS     *NotifySNS     `yaml:"sns"`
	Webhook *NotifyWebhook `yaml:"webhook"`
}

// NotifySNS publishes to a topic.
type NotifySNS struct {
	TopicARN string `yaml:"topic_arn"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
}

// NotifyWebhook POSTs JSON to URL.
type NotifyWebhook struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
}

func (n Notify) validate() error {
	if s := n.SNS; s != nil {
		if !strings.HasPrefix(s.TopicARN, "arn:") {
			return fieldErr("notify.sns.topic_arn", "want an SNS topic ARN, got %q", s.TopicARN)
		}
		if s.Region == "" {
			return fieldErr("notify.sns.region", "required")
		}
	}
	if w := n.Webhook; w != nil {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr("notify.webhook.url", "want an http(s) URL, got %q", w.URL)
		}
	}
	return nil
}

// SessionTargets lists the targets of kind ec2, sorted.
func (c *Config) SessionTargets() []string {
	var n []string
	for _, name := range c.TargetNames() {
		if c.Targets[name].Kind == "ec2" {
			n = append(n, name)
		}
	}
	return n
}

// ReplicationsTo lists the replications whose target is name.
func (c *Config) ReplicationsTo(name string) []Replication {
	var out []Replication
	for _, r := range c.Replications {
		if r.Target == name {
			out = append(out, r)
		}
	}
	return out
}

func (e *EC2) applyDefaultsIfSet() {
	if e != nil {
		e.applyDefaults()
	}
}
