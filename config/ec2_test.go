package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// sessionYAML is the ec2 target of docs/session.md.
const sessionYAML = `
keys: {dir: /etc/zcloud/keys}
notify:
  sns: {topic_arn: "arn:aws:sns:eu-west-1:123456789012:zcloud", region: eu-west-1}
  webhook: {url: "https://hooks.example.org/zcloud"}
targets:
  nightly:
    kind: ec2
    transport: parallel
    ssh: {user: root, identity_file: /etc/zcloud/id_ed25519}
    ec2:
      region: eu-west-1
      mode: launch-terminate
      ami: ami-0123456789abcdef0
      instance_type: m6i.large
      subnet_id: subnet-0123456789abcdef0
      security_group_ids: [sg-0123456789abcdef0]
      tags: {Name: zcloud-backup}
      market: spot
      spot_max_price: "0.05"
      fallback_instance_types: [m5.large, m6a.large]
      fallback_to_on_demand: true
      spot_interruptions: 2
      pool: backup
      pool_device_dirs: [/dev/disk/by-id]
      unlock: {method: zfs, key: backup-pool, dataset: backup}
      prices: {m6i.large: 0.107, m5.large: 0.107, m6a.large: 0.0972}
      schedule: {time: "02:30", time_zone: Europe/London}
replications:
  - {source: tank/data, target: nightly, target_dataset: backup/data}
  - {source: tank/home, target: nightly, target_dataset: backup/home}
`

func TestSessionConfigParsesWithDefaults(t *testing.T) {
	c, err := Parse([]byte(sessionYAML))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Targets["nightly"].EC2
	if e.IMDSEndpoint != "http://169.254.169.254" || e.SSHTimeout != 5*time.Minute || e.Parallelism != 2 || e.SpotPollInterval != 5*time.Second {
		t.Fatalf("defaults: %+v", e)
	}
	if h, m, _ := e.Schedule.HourMinute(); h != 2 || m != 30 {
		t.Fatalf("schedule %d:%d", h, m)
	}
	if got := c.SessionTargets(); len(got) != 1 || got[0] != "nightly" || len(c.ReplicationsTo("nightly")) != 2 {
		t.Fatalf("targets %v", got)
	}
}

func TestSessionConfigErrorsNameTheField(t *testing.T) {
	cases := []struct{ from, to, field string }{
		{"mode: launch-terminate", "mode: sometimes", "targets.nightly.ec2.mode"},
		{"ami: ami-0123456789abcdef0", "ami: ubuntu", "targets.nightly.ec2.ami"},
		{"market: spot", "market: auction", "targets.nightly.ec2.market"},
		{`spot_max_price: "0.05"`, `spot_max_price: "cheap"`, "targets.nightly.ec2.spot_max_price"},
		{"pool: backup", "volumes: [vol-0123456789abcdef0]\n      pool: backup", "targets.nightly.ec2.volumes"},
		{"pool: backup", "pool: 'back up'", "targets.nightly.ec2.pool"},
		{"dataset: backup}", "dataset: other/x}", "targets.nightly.ec2.unlock.dataset"},
		{"key: backup-pool", "key: '../etc/shadow'", "targets.nightly.ec2.unlock.key"},
		{"method: zfs", "method: luks", "targets.nightly.ec2.unlock.devices"},
		{"time: \"02:30\"", "time: \"25:00\"", "targets.nightly.ec2.schedule.time"},
		{"time_zone: Europe/London", "time_zone: Mars/Olympus", "targets.nightly.ec2.schedule.time_zone"},
		{"region: eu-west-1\n      mode", "region: \"\"\n      mode", "targets.nightly.ec2.region"},
		{"Name: zcloud-backup", "\"zcloud:x\": y", "targets.nightly.ec2.tags"},
		{"ssh: {user: root,", "ssh: {host_key: 'ssh-ed25519 AAAA', user: root,", "targets.nightly.ec2.mode"},
		{"topic_arn: \"arn:", "topic_arn: \"x", "notify.sns.topic_arn"},
	}
	for _, tc := range cases {
		y := strings.Replace(sessionYAML, tc.from, tc.to, 1)
		if y == sessionYAML {
			t.Fatalf("%q not in the YAML", tc.from)
		}
		_, err := Parse([]byte(y))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s -> %s: got %v, want an error naming %s", tc.from, tc.to, err, tc.field)
		}
	}
	// start-stop needs a pinned host key and an instance id.
	y := strings.Replace(sessionYAML, "mode: launch-terminate", "mode: start-stop\n      instance_id: i-0123456789abcdef0", 1)
	y = strings.Replace(y, "market: spot", "market: on-demand", 1)
	y = strings.Replace(y, `spot_max_price: "0.05"`, "", 1)
	var fe *FieldError
	if _, err := Parse([]byte(y)); !errors.As(err, &fe) || fe.Field != "targets.nightly.ec2.mode" || !strings.Contains(err.Error(), "host key") {
		t.Errorf("start-stop without a pinned key: %v", err)
	}
	y = strings.Replace(y, "ssh: {user: root,", "ssh: {host: backup.example.org, host_key: 'ssh-ed25519 AAAA', user: root,", 1)
	if _, err := Parse([]byte(y)); err != nil {
		t.Errorf("start-stop with a pinned key: %v", err)
	}
}

// A config that still lists ec2.volumes is refused, naming what replaced
// the list (the pool's own volume tags, ec2.pool naming a pools: entry).
func TestVolumesListIsRefusedNamingItsReplacement(t *testing.T) {
	y := strings.Replace(sessionYAML, "pool: backup", "volumes: [vol-0123456789abcdef0]\n      pool: backup", 1)
	_, err := Parse([]byte(y))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "targets.nightly.ec2.volumes" {
		t.Fatalf("got %v, want an error naming targets.nightly.ec2.volumes", err)
	}
	for _, want := range []string{"no longer supported", "pools:", "ec2.pool", "zcloud:pool tag", "docs/pools.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A target whose ec2.pool names a pool under pools: mounts it: the pool
// knows its sessions, may leave instance_id empty, and must share the
// target's region and endpoint.
func TestSessionPoolIsMountedByItsTargets(t *testing.T) {
	pools := `
pools:
  - name: backup
    target: nightly
    availability_zone: eu-west-1a
    aws: {region: eu-west-1}
    layout: {vdevs: 1, width: 2, redundancy: mirror, volume_type: gp3, volume_size_gib: 10}
`
	c, err := Parse([]byte(sessionYAML + pools))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.SessionPool("nightly")
	if !ok || p.Name != "backup" || len(p.Sessions) != 1 || p.Sessions[0] != "nightly" || p.InstanceID != "" {
		t.Fatalf("SessionPool: %+v %v", p, ok)
	}
	_, err = Parse([]byte(sessionYAML + strings.Replace(pools, "region: eu-west-1", "region: us-east-1", 1)))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "targets.nightly.ec2.region" {
		t.Fatalf("region mismatch: %v", err)
	}
	// Without a session mounting it, a pool needs its instance.
	_, err = Parse([]byte(strings.Replace(sessionYAML, "pool: backup", "pool: other", 1) + strings.Replace(pools, "dataset: backup", "dataset: other", 1)))
	if err == nil || !strings.Contains(err.Error(), "instance_id") {
		t.Fatalf("a pool no session mounts, without instance_id: %v", err)
	}
}
