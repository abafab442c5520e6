package config

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"zcloud/poolplan"
	"zcloud/zfsname"
)

// Pool is a ZFS pool built from EBS volumes attached to one EC2 instance
// (see docs/pools.md). zpool commands run over SSH on Target.
type Pool struct {
	// Name is the zpool name; it is also the value of the zcloud:pool tag
	// on every volume zcloud creates for the pool.
	Name string `yaml:"name" json:"name"`
	// Target is a name under targets: the SSH host zpool runs on (the
	// instance the volumes are attached to).
	Target string `yaml:"target" json:"target"`
	// InstanceID is the instance create, grow, scrub and destroy run on.
	// A pool that sessions mount (an ec2 target names it) may leave it
	// empty: each session attaches the pool's volumes to the instance it
	// launched. AvailabilityZone is where the volumes live; a session's
	// instance must run there.
	InstanceID       string `yaml:"instance_id" json:"instance_id"`
	AvailabilityZone string `yaml:"availability_zone" json:"availability_zone"`
	// Sessions are the ec2 targets whose sessions mount this pool (set
	// from targets.*.ec2.pool, not written in the file). Their pool is
	// handed back after every operation: exported and its volumes
	// detached, so the next session can attach them.
	Sessions []string `yaml:"-" json:"sessions,omitempty"`
	// InstanceType, when set, lets validation check the layout against the
	// instance's EBS attachment limit.
	InstanceType string `yaml:"instance_type,omitempty" json:"instance_type,omitempty"`
	// AWS selects the account, region and (for tests) the endpoint.
	AWS AWS `yaml:"aws" json:"aws"`
	// Layout: vdevs × width volumes of one redundancy, and the volumes'
	// type, size, IOPS and throughput.
	Layout poolplan.Layout `yaml:"layout" json:"layout"`
	// Tags are added to every volume (keys starting with zcloud: or aws:
	// are reserved).
	Tags map[string]string `yaml:"tags,omitempty" json:"tags,omitempty"`
	// LUKS formats and opens every volume with a key from the key source.
	LUKS PoolLUKS `yaml:"luks,omitempty" json:"luks,omitzero"`
	// DeviceDir is where the instance links NVMe EBS devices by volume id
	// (default /dev/disk/by-id).
	DeviceDir string `yaml:"device_dir,omitempty" json:"device_dir,omitempty"`
	// Grow caps what `zcloud pool grow` (a workflow input) may ask for.
	Grow PoolGrowCaps `yaml:"grow,omitempty" json:"grow,omitzero"`
	// ParallelVdevs is how many vdevs a rolling replace works on at once
	// (default 1).
	ParallelVdevs int `yaml:"parallel_vdevs,omitempty" json:"parallel_vdevs,omitempty"`
	// ScrubSchedule is a cron expression ("0 3 * * 0") for
	// `zcloud pool scrub --schedule`; empty: no schedule.
	ScrubSchedule string `yaml:"scrub_schedule,omitempty" json:"scrub_schedule,omitempty"`
	// PollInterval between status polls while waiting for a resilver, a
	// scrub, a device node or a volume modification (default 15s).
	PollInterval time.Duration `yaml:"poll_interval,omitempty" json:"poll_interval,omitempty"`
	// HeartbeatTimeout of the pool activities (default 2m): how soon an
	// activity of a crashed worker is retried elsewhere.
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout,omitempty" json:"heartbeat_timeout,omitempty"`
}

// PoolLUKS turns on LUKS under ZFS.
type PoolLUKS struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Key is the key's name in the worker's key source (keys.dir or
	// keys.command); the key itself never enters the config or a workflow.
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
}

// DefaultDeviceDir is where udev links NVMe EBS devices by volume id.
const DefaultDeviceDir = "/dev/disk/by-id"

// PoolGrowCaps bound a grow's volumes: EBS volumes never shrink and are
// billed by size and provisioned performance, so an input may choose up to
// these and no further (docs/pools.md).
type PoolGrowCaps struct {
	// MaxVolumeSizeGiB: largest volume size (default 4 × layout
	// volume_size_gib, at least 1024).
	MaxVolumeSizeGiB int64 `yaml:"max_volume_size_gib,omitempty" json:"max_volume_size_gib,omitempty"`
	// VolumeTypes a rolling replace may move to (default: the layout's).
	VolumeTypes []poolplan.VolumeType `yaml:"volume_types,omitempty" json:"volume_types,omitempty"`
	// MaxIOPS and MaxThroughput (MiB/s) a grow may provision (default: the
	// layout's, or the volume type's baseline when higher).
	MaxIOPS       int64 `yaml:"max_iops,omitempty" json:"max_iops,omitempty"`
	MaxThroughput int64 `yaml:"max_throughput,omitempty" json:"max_throughput,omitempty"`
}

// GrowCaps are p.Grow with the defaults filled in.
func (p Pool) GrowCaps() PoolGrowCaps {
	g := p.Grow
	if g.MaxVolumeSizeGiB == 0 {
		g.MaxVolumeSizeGiB = max(4*p.Layout.VolumeSizeGiB, 1024)
	}
	if len(g.VolumeTypes) == 0 && p.Layout.VolumeType != "" {
		g.VolumeTypes = []poolplan.VolumeType{p.Layout.VolumeType}
	}
	lim, _ := poolplan.Limits(p.Layout.VolumeType)
	if g.MaxIOPS == 0 {
		g.MaxIOPS = max(p.Layout.IOPS, lim.MinIOPS)
	}
	if g.MaxThroughput == 0 {
		g.MaxThroughput = max(p.Layout.Throughput, lim.MinThroughput)
	}
	return g
}

// GrowRefusal says which field of a volume spec goes beyond the pool's
// grow caps, and why ("" if none): the one rule the grow workflow (before
// anything runs) and the volume activities (again) apply.
func (p Pool) GrowRefusal(spec poolplan.VolumeSpec) (field, why string) {
	g := p.GrowCaps()
	switch {
	case spec.SizeGiB > g.MaxVolumeSizeGiB:
		return "size_gib", fmt.Sprintf("pool %s's volumes may grow to %d GiB (grow.max_volume_size_gib in the configuration)", p.Name, g.MaxVolumeSizeGiB)
	case spec.Type != "" && spec.Type != p.Layout.VolumeType && !slices.Contains(g.VolumeTypes, spec.Type):
		return "volume_type", fmt.Sprintf("pool %s's volumes may be %v (grow.volume_types in the configuration)", p.Name, g.VolumeTypes)
	case spec.IOPS > g.MaxIOPS:
		return "iops", fmt.Sprintf("pool %s's volumes may have up to %d IOPS (grow.max_iops in the configuration)", p.Name, g.MaxIOPS)
	case spec.Throughput > g.MaxThroughput:
		return "throughput", fmt.Sprintf("pool %s's volumes may have up to %d MiB/s (grow.max_throughput in the configuration)", p.Name, g.MaxThroughput)
	}
	return "", ""
}

func (p *Pool) applyDefaults() {
	p.Grow = p.GrowCaps()
	if p.DeviceDir == "" {
		p.DeviceDir = DefaultDeviceDir
	}
	if p.ParallelVdevs == 0 {
		p.ParallelVdevs = 1
	}
	if p.PollInterval == 0 {
		p.PollInterval = 15 * time.Second
	}
	if p.HeartbeatTimeout == 0 {
		p.HeartbeatTimeout = 2 * time.Minute
	}
	if p.AWS.Region == "" && p.AvailabilityZone != "" {
		// us-east-1a -> us-east-1
		p.AWS.Region = strings.TrimRight(p.AvailabilityZone, "abcdefghijklmnopqrstuvwxyz")
	}
}

// applyPoolDefaults fills every pool's defaults and the ec2 targets
// that mount it (call after the targets' defaults).
func (c *Config) applyPoolDefaults() {
	for i := range c.Pools {
		c.Pools[i].applyDefaults()
		c.Pools[i].Sessions = nil
		for _, name := range c.SessionTargets() {
			if e := c.Targets[name].EC2; e != nil && e.Mode == ModeLaunchTerminate && e.Pool == c.Pools[i].Name {
				c.Pools[i].Sessions = append(c.Pools[i].Sessions, name)
			}
		}
	}
}

// SessionPool returns the configured pool an ec2 target's sessions mount
// (its ec2.pool names an entry under pools:, mode launch-terminate).
func (c *Config) SessionPool(target string) (Pool, bool) {
	t, ok := c.Targets[target]
	if !ok || t.EC2 == nil || t.EC2.Mode != ModeLaunchTerminate {
		return Pool{}, false
	}
	return c.Pool(t.EC2.Pool)
}

// validateSessionPools checks that a target mounting a configured pool
// reaches the pool's volumes: same region and endpoint.
func (c *Config) validateSessionPools() error {
	var errs Errors
	for _, name := range c.SessionTargets() {
		p, ok := c.SessionPool(name)
		if !ok {
			continue
		}
		e, f := c.Targets[name].EC2, "targets."+name+".ec2"
		if e.Region != p.AWS.Region {
			errs.add(fieldErr(f+".region", "%q, but pool %s's volumes are in %q (its aws.region): a session attaches them only in their own region and availability zone", e.Region, p.Name, p.AWS.Region))
		} else if e.Endpoint != p.AWS.Endpoint {
			errs.add(fieldErr(f+".endpoint", "%q differs from pool %s's aws.endpoint %q: the session would look for the pool's volumes elsewhere", e.Endpoint, p.Name, p.AWS.Endpoint))
		}
	}
	return errs.err()
}

var (
	instanceIDRe = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	azRe         = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d[a-z]$`)
	cronFieldRe  = regexp.MustCompile(`^[0-9*/,\-A-Za-z?LW#]+$`)
)

// Pool returns the pool named name.
func (c *Config) Pool(name string) (Pool, bool) {
	for _, p := range c.Pools {
		if p.Name == name {
			return p, true
		}
	}
	return Pool{}, false
}

// PoolNames lists the configured pools in file order.
func (c *Config) PoolNames() []string {
	var n []string
	for _, p := range c.Pools {
		n = append(n, p.Name)
	}
	return n
}

func (c *Config) validatePools() error {
	var errs Errors
	seen := map[string]bool{}
	for i, p := range c.Pools {
		f := fmt.Sprintf("pools[%d]", i)
		if seen[p.Name] {
			errs.add(fieldErr(f+".name", "pool %q is configured twice", p.Name))
			continue
		}
		seen[p.Name] = true
		errs.add(p.Validate(f, c.Targets))
	}
	return errs.err()
}

// Validate checks one pool; f prefixes field names ("pools[0]").
func (p Pool) Validate(f string, targets map[string]Target) error {
	if _, err := zfsname.ParsePool(p.Name); err != nil {
		return fieldErr(f+".name", "%v", err)
	}
	if p.Target == "" {
		return fieldErr(f+".target", "required: the name of the target (SSH host) the pool lives on")
	}
	if _, ok := targets[p.Target]; !ok {
		var names []string
		for k := range targets {
			names = append(names, k)
		}
		slices.Sort(names)
		return fieldErr(f+".target", "no target named %q (known: %s)", p.Target, strings.Join(names, ", "))
	}
	if p.InstanceID == "" && len(p.Sessions) > 0 {
		// Sessions provide the instance.
	} else if !instanceIDRe.MatchString(p.InstanceID) {
		return fieldErr(f+".instance_id", "%q is not an instance id like i-0123456789abcdef0", p.InstanceID)
	}
	if !azRe.MatchString(p.AvailabilityZone) {
		return fieldErr(f+".availability_zone", "%q is not an availability zone like us-east-1a", p.AvailabilityZone)
	}
	if p.AWS.Region == "" {
		return fieldErr(f+".aws.region", "required")
	}
	var err error
	if p.InstanceType != "" {
		err = p.Layout.ValidateFor(poolplan.Instance{Type: p.InstanceType}, p.ParallelVdevs)
	} else {
		err = p.Layout.Validate()
	}
	if err != nil {
		var fe *poolplan.FieldError
		if errors.As(err, &fe) {
			return fieldErr(f+"."+fe.Field, "%s", fe.Reason)
		}
		return fieldErr(f+".layout", "%v", err)
	}
	for k, v := range p.Tags {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "zcloud:") || strings.HasPrefix(lk, "aws:") {
			return fieldErr(f+".tags."+k, "tag keys starting with zcloud: or aws: are reserved")
		}
		if k == "" || len(k) > 128 || len(v) > 256 {
			return fieldErr(f+".tags."+k, "tag keys are 1-128 characters, values up to 256")
		}
	}
	if p.LUKS.Enabled && p.LUKS.Key == "" {
		return fieldErr(f+".luks.key", "required when luks.enabled: the key's name in the key source")
	}
	if _, err := zfsname.ParseDevice(p.DeviceDir); err != nil {
		return fieldErr(f+".device_dir", "%v", err)
	}
	if field, why := p.GrowRefusal(p.Layout.Volume()); field != "" {
		return fieldErr(f+".grow", "the layout's own volumes are beyond it: %s: %s", field, why)
	}
	if p.Grow.MaxVolumeSizeGiB < p.Layout.VolumeSizeGiB {
		return fieldErr(f+".grow.max_volume_size_gib", "must be at least layout.volume_size_gib (%d), got %d", p.Layout.VolumeSizeGiB, p.Grow.MaxVolumeSizeGiB)
	}
	for i, vt := range p.Grow.VolumeTypes {
		if _, ok := poolplan.Limits(vt); !ok {
			return fieldErr(fmt.Sprintf("%s.grow.volume_types[%d]", f, i), "unknown EBS volume type %q", vt)
		}
	}
	if p.ParallelVdevs < 1 || p.ParallelVdevs > max(p.Layout.Vdevs, 1) {
		return fieldErr(f+".parallel_vdevs", "must be between 1 and the number of vdevs (%d), not %d", p.Layout.Vdevs, p.ParallelVdevs)
	}
	if p.ScrubSchedule != "" {
		fields := strings.Fields(p.ScrubSchedule)
		if len(fields) != 5 {
			return fieldErr(f+".scrub_schedule", "%q is not a 5-field cron expression like \"0 3 * * 0\"", p.ScrubSchedule)
		}
		for _, x := range fields {
			if !cronFieldRe.MatchString(x) {
				return fieldErr(f+".scrub_schedule", "cron field %q is not valid", x)
			}
		}
	}
	if p.PollInterval < 100*time.Millisecond {
		return fieldErr(f+".poll_interval", "must be at least 100ms, not %s", p.PollInterval)
	}
	if p.HeartbeatTimeout < time.Second {
		return fieldErr(f+".heartbeat_timeout", "must be at least 1s, not %s", p.HeartbeatTimeout)
	}
	return nil
}

// AWS selects the AWS account, region and endpoint. It is the settings
// shape only: cloud/awsclient turns it into clients (awsclient.Config has
// the same fields), so config imports no AWS SDK. The zero value plus a
// Region uses the SDK's default credential chain against real AWS.
type AWS struct {
	Region string `yaml:"region" json:"region"`
	// Endpoint overrides every service's endpoint (BaseEndpoint), e.g. a
	// moto_server URL in tests. Empty means the real AWS endpoints.
	Endpoint string `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	// Profile picks a shared-config profile for the default chain.
	Profile string `yaml:"profile,omitempty" json:"profile,omitempty"`
	// Static credentials, for tests; when AccessKeyID is empty the default
	// chain (env, shared files, instance role...) is used.
	AccessKeyID     string `yaml:"-" json:"-"`
	SecretAccessKey string `yaml:"-" json:"-"`
	SessionToken    string `yaml:"-" json:"-"`
	// MaxAttempts bounds the SDK's own retries per call (0: SDK default).
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
}
