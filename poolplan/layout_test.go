package poolplan

import (
	"errors"
	"strings"
	"testing"
)

func TestLayoutValidateNamesTheField(t *testing.T) {
	ok := Layout{Vdevs: 2, Width: 3, Redundancy: RaidZ1, VolumeType: GP3, VolumeSizeGiB: 10}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid layout refused: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(*Layout)
		field string
		want  string
	}{
		{"no vdevs", func(l *Layout) { l.Vdevs = 0 }, "layout.vdevs", "at least 1 vdev"},
		{"raidz2 too narrow", func(l *Layout) { l.Redundancy = RaidZ2; l.Width = 2 }, "layout.width", "raidz2 needs 3–255"},
		{"raidz3 too narrow", func(l *Layout) { l.Redundancy = RaidZ3; l.Width = 3 }, "layout.width", "raidz3 needs 4–255"},
		{"mirror of one", func(l *Layout) { l.Redundancy = Mirror; l.Width = 1 }, "layout.width", "at least 2"},
		{"wide stripe", func(l *Layout) { l.Redundancy = Stripe; l.Width = 4 }, "layout.width", "vdevs=8 width=1"},
		{"bad redundancy", func(l *Layout) { l.Redundancy = "raid5" }, "layout.redundancy", `"raid5"`},
		{"bad type", func(l *Layout) { l.VolumeType = "gp9" }, "layout.volume_type", `"gp9"`},
		{"gp3 too big", func(l *Layout) { l.VolumeSizeGiB = 65537 }, "layout.volume_size_gib", "1–65536"},
		{"gp2 over 16 TiB", func(l *Layout) { l.VolumeType = GP2; l.VolumeSizeGiB = 16385 }, "layout.volume_size_gib", "1–16384"},
		{"st1 too small", func(l *Layout) { l.VolumeType = ST1; l.VolumeSizeGiB = 100 }, "layout.volume_size_gib", "125–16384"},
		{"gp2 with iops", func(l *Layout) { l.VolumeType = GP2; l.IOPS = 3000 }, "layout.iops", "do not take"},
		{"gp3 iops ratio", func(l *Layout) { l.IOPS = 6000 }, "layout.iops", "500 IOPS per GiB"},
		{"io2 needs iops", func(l *Layout) { l.VolumeType = IO2 }, "layout.iops", "outside io2's range"},
		{"gp3 throughput needs iops", func(l *Layout) { l.VolumeSizeGiB = 100; l.Throughput = 1000 }, "layout.throughput", "at least 4000 IOPS"},
		{"st1 throughput", func(l *Layout) { l.VolumeType = ST1; l.VolumeSizeGiB = 500; l.Throughput = 200 }, "layout.throughput", "do not take"},
	}
	for _, c := range cases {
		l := ok
		c.edit(&l)
		err := l.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %v, want a FieldError", c.name, err)
			continue
		}
		if fe.Field != c.field || !strings.Contains(fe.Reason, c.want) {
			t.Errorf("%s: got %q, want field %s containing %q", c.name, err, c.field, c.want)
		}
	}
}

func TestLayoutCapacity(t *testing.T) {
	cases := []struct {
		l    Layout
		data int64
	}{
		{Layout{Vdevs: 5, Width: 8, Redundancy: RaidZ1, VolumeSizeGiB: 1}, 35}, // the original 40 × 1 GB pool
		{Layout{Vdevs: 2, Width: 3, Redundancy: RaidZ1, VolumeSizeGiB: 100}, 400},
		{Layout{Vdevs: 1, Width: 6, Redundancy: RaidZ2, VolumeSizeGiB: 100}, 400},
		{Layout{Vdevs: 3, Width: 2, Redundancy: Mirror, VolumeSizeGiB: 100}, 300},
		{Layout{Vdevs: 4, Width: 1, Redundancy: Stripe, VolumeSizeGiB: 100}, 400},
	}
	for _, c := range cases {
		if got := c.l.DataGiB(); got != c.data {
			t.Errorf("%+v: DataGiB %d, want %d", c.l, got, c.data)
		}
		if got, want := c.l.UsableGiB(), c.data-c.data/32; got != want {
			t.Errorf("%+v: UsableGiB %d, want %d", c.l, got, want)
		}
	}
}

func TestAttachmentLimits(t *testing.T) {
	cases := []struct {
		inst   Instance
		slots  int
		shared bool
	}{
		{Instance{Type: "m5.large"}, 26, true},                             // 28 − root − ENI
		{Instance{Type: "c6gd.xlarge", InstanceStoreVolumes: 1}, 25, true}, // instance store shares slots
		{Instance{Type: "t3.micro", NetworkInterfaces: 2}, 25, true},       // a second ENI costs a slot
		{Instance{Type: "m7i.2xlarge", NetworkInterfaces: 4}, 31, false},   // dedicated: ENIs don't count
		{Instance{Type: "r7i.48xlarge"}, 127, false},                       // dedicated 48xlarge
		{Instance{Type: "m7i.metal-24xl"}, 38, false},                      // dedicated metal
		{Instance{Type: "t2.medium"}, 39, false},                           // Xen
		{Instance{Type: "zz9.large"}, 26, true},                            // unknown: shared Nitro
	}
	for _, c := range cases {
		slots, lim, err := DataVolumeSlots(c.inst)
		if err != nil || slots != c.slots || lim.Shared != c.shared {
			t.Errorf("%+v: slots %d shared %v err %v, want %d %v", c.inst, slots, lim.Shared, err, c.slots, c.shared)
		}
	}
	if _, _, err := DataVolumeSlots(Instance{Type: "m5"}); err == nil {
		t.Error("instance type without size accepted")
	}
}

func TestLayoutValidateForAttachmentLimit(t *testing.T) {
	orig := Layout{Vdevs: 5, Width: 8, Redundancy: RaidZ1, VolumeType: GP3, VolumeSizeGiB: 1}
	err := orig.ValidateFor(Instance{Type: "m5.large"}, 0)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "layout.vdevs" || !strings.Contains(fe.Reason, "40 volumes") || !strings.Contains(fe.Reason, "26 data-volume slots") {
		t.Fatalf("40 volumes on m5.large: got %v", err)
	}
	if err := orig.ValidateFor(Instance{Type: "t2.large"}, 0); err == nil || !strings.Contains(err.Error(), "39 data-volume slots") {
		t.Fatalf("40 volumes on Xen: got %v", err)
	}
	if err := orig.ValidateFor(Instance{Type: "m7i.16xlarge"}, 2); err != nil {
		t.Fatalf("40+2 volumes on m7i.16xlarge (47 slots): %v", err)
	}
	small := Layout{Vdevs: 2, Width: 13, Redundancy: RaidZ2, VolumeType: GP3, VolumeSizeGiB: 10}
	if err := small.ValidateFor(Instance{Type: "m5.large"}, 0); err != nil {
		t.Fatalf("26 volumes on m5.large: %v", err)
	}
	if err := small.ValidateFor(Instance{Type: "m5.large"}, 1); err == nil || !strings.Contains(err.Error(), "+ 1 for replacements") {
		t.Fatalf("26+1 volumes on m5.large: %v", err)
	}
}
