package config

import (
	"errors"
	"strings"
	"testing"

	"zcloud/poolplan"
)

const poolBase = `
targets:
  inst: {ssh: {host: 10.0.0.1, identity_file: /k, host_key: "ssh-ed25519 AAAA"}}
pools:
  - name: archive
    target: inst
    instance_id: i-0123456789abcdef0
    availability_zone: us-east-1a
    layout: {vdevs: 2, width: 3, redundancy: raidz1, volume_type: gp3, volume_size_gib: 10}
`

func TestPoolDefaultsAndValidation(t *testing.T) {
	c, err := Parse([]byte(poolBase))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Pool("archive")
	if !ok || p.DeviceDir != "/dev/disk/by-id" || p.ParallelVdevs != 1 || p.AWS.Region != "us-east-1" || p.HeartbeatTimeout == 0 {
		t.Fatalf("defaults: %+v", p)
	}
	cases := []struct{ edit, field string }{
		{"    target: nope", "pools[0].target"},
		{"    instance_id: i-xyz", "pools[0].instance_id"},
		{"    availability_zone: moon", "pools[0].availability_zone"},
		{"    layout: {vdevs: 2, width: 2, redundancy: raidz2, volume_type: gp3, volume_size_gib: 10}", "pools[0].layout.width"},
		{"    layout: {vdevs: 2, width: 3, redundancy: raidz1, volume_type: gp2, volume_size_gib: 20000}", "pools[0].layout.volume_size_gib"},
		{"    layout: {vdevs: 9, width: 3, redundancy: raidz1, volume_type: gp3, volume_size_gib: 10}\n    instance_type: m6i.large", "pools[0].layout.vdevs"},
		{"    tags: {\"zcloud:pool\": x}", "pools[0].tags.zcloud:pool"},
		{"    luks: {enabled: true}", "pools[0].luks.key"},
		{"    parallel_vdevs: 3", "pools[0].parallel_vdevs"},
		{"    scrub_schedule: \"weekly\"", "pools[0].scrub_schedule"},
		{"    device_dir: relative/dir", "pools[0].device_dir"},
		{"    grow: {max_volume_size_gib: 5}", "pools[0].grow"},
		{"    grow: {volume_types: [gp3, floppy]}", "pools[0].grow.volume_types[1]"},
		{"  - name: archive\n    target: inst\n    instance_id: i-0123456789abcdef0\n    availability_zone: us-east-1a\n    layout: {vdevs: 1, width: 1, redundancy: stripe, volume_type: gp3, volume_size_gib: 1}", "pools[1].name"},
	}
	for _, tc := range cases {
		y := poolBase
		replace := false
		for _, k := range []string{"    target:", "    instance_id:", "    availability_zone:", "    layout:"} {
			replace = replace || strings.HasPrefix(tc.edit, k)
		}
		if replace {
			key := strings.Fields(tc.edit)[0]
			lines := strings.Split(y, "\n")
			for i, l := range lines {
				if strings.HasPrefix(strings.TrimSpace(l), key) {
					lines[i] = strings.SplitN(tc.edit, "\n", 2)[0]
					if rest := strings.SplitN(tc.edit, "\n", 2); len(rest) == 2 {
						lines[i] += "\n" + rest[1]
					}
				}
			}
			y = strings.Join(lines, "\n")
		} else {
			y += tc.edit + "\n"
		}
		_, err := Parse([]byte(y))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%q: got %v, want an error on %s", tc.edit, err, tc.field)
		}
	}
}

// A grow may ask up to the pool's grow caps: by default 4 × the layout's
// size (at least 1024 GiB), the layout's type, and its IOPS/throughput or
// the type's baseline.
func TestPoolGrowCaps(t *testing.T) {
	c, err := Parse([]byte(poolBase))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.Pool("archive")
	if g := p.Grow; g.MaxVolumeSizeGiB != 1024 || len(g.VolumeTypes) != 1 || g.VolumeTypes[0] != "gp3" || g.MaxIOPS != 3000 || g.MaxThroughput != 125 {
		t.Fatalf("default caps: %+v", g)
	}
	ok := p.Layout.Volume()
	ok.SizeGiB, ok.IOPS, ok.Throughput = 1024, 3000, 125
	if field, why := p.GrowRefusal(ok); field != "" {
		t.Fatalf("within the caps: %s %s", field, why)
	}
	for field, edit := range map[string]func(*poolplan.VolumeSpec){
		"size_gib":    func(s *poolplan.VolumeSpec) { s.SizeGiB = 1025 },
		"volume_type": func(s *poolplan.VolumeSpec) { s.Type = "io2" },
		"iops":        func(s *poolplan.VolumeSpec) { s.IOPS = 3001 },
		"throughput":  func(s *poolplan.VolumeSpec) { s.Throughput = 126 },
	} {
		s := ok
		edit(&s)
		if got, _ := p.GrowRefusal(s); got != field {
			t.Errorf("%+v: refused %q, want %q", s, got, field)
		}
	}
}
