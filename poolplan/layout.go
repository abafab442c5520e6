package poolplan

import "fmt"

// Redundancy is the vdev type of a pool layout.
type Redundancy string

// The vdev types zcloud builds.
const (
	Stripe Redundancy = "stripe"
	Mirror Redundancy = "mirror"
	RaidZ1 Redundancy = "raidz1"
	RaidZ2 Redundancy = "raidz2"
	RaidZ3 Redundancy = "raidz3"
)

// Parity is the number of devices' worth of redundancy per vdev.
func (r Redundancy) Parity() int {
	switch r {
	case RaidZ1:
		return 1
	case RaidZ2:
		return 2
	case RaidZ3:
		return 3
	}
	return 0
}

// MaxRaidzWidth is ZFS's limit on children of one raidz vdev.
const MaxRaidzWidth = 255

// Layout is a pool made of Vdevs identical vdevs of Width EBS volumes each.
type Layout struct {
	Vdevs         int        `json:"vdevs" yaml:"vdevs"`
	Width         int        `json:"width" yaml:"width"`
	Redundancy    Redundancy `json:"redundancy" yaml:"redundancy"`
	VolumeType    VolumeType `json:"volume_type" yaml:"volume_type"`
	VolumeSizeGiB int64      `json:"volume_size_gib" yaml:"volume_size_gib"`
	IOPS          int64      `json:"iops,omitempty" yaml:"iops,omitempty"`
	Throughput    int64      `json:"throughput,omitempty" yaml:"throughput,omitempty"`
}

// Volume is the spec of each of the layout's volumes.
func (l Layout) Volume() VolumeSpec {
	return VolumeSpec{Type: l.VolumeType, SizeGiB: l.VolumeSizeGiB, IOPS: l.IOPS, Throughput: l.Throughput}
}

// Devices is the number of EBS volumes the layout needs.
func (l Layout) Devices() int { return l.Vdevs * l.Width }

// Validate checks the layout on its own: vdev shape and per-type EBS limits.
// Errors are *FieldError naming the layout field to fix.
func (l Layout) Validate() error {
	if l.Vdevs < 1 {
		return fieldErr("layout.vdevs", "need at least 1 vdev, got %d", l.Vdevs)
	}
	switch l.Redundancy {
	case Stripe:
		if l.Width != 1 {
			return fieldErr("layout.width", "stripe vdevs are single devices: use vdevs=%d width=1 for %d striped volumes", l.Vdevs*max(l.Width, 1), l.Vdevs*max(l.Width, 1))
		}
	case Mirror:
		if l.Width < 2 {
			return fieldErr("layout.width", "a mirror needs at least 2 devices, got %d", l.Width)
		}
	case RaidZ1, RaidZ2, RaidZ3:
		p := l.Redundancy.Parity()
		if l.Width < p+1 || l.Width > MaxRaidzWidth {
			return fieldErr("layout.width", "%s needs %d–%d devices per vdev, got %d", l.Redundancy, p+1, MaxRaidzWidth, l.Width)
		}
	default:
		return fieldErr("layout.redundancy", "unknown redundancy %q (stripe, mirror, raidz1, raidz2, raidz3)", l.Redundancy)
	}
	return CheckVolume("layout.", l.Volume())
}

// ValidateFor checks the layout and that its volumes, plus headroom extra
// ones (a rolling replace attaches one new volume per vdev it works on),
// fit the instance's attachment limit.
func (l Layout) ValidateFor(inst Instance, headroom int) error {
	if err := l.Validate(); err != nil {
		return err
	}
	slots, lim, err := DataVolumeSlots(inst)
	if err != nil {
		return err
	}
	if need := l.Devices() + headroom; need > slots {
		extra := ""
		if headroom > 0 {
			extra = fmt.Sprintf(" (%d volumes + %d for replacements)", l.Devices(), headroom)
		}
		return fieldErr("layout.vdevs", "%d vdevs × %d = %d volumes%s exceed the %d data-volume slots of %s: %s limit %d",
			l.Vdevs, l.Width, need, extra, slots, inst.Type, lim.Source, lim.Max)
	}
	return nil
}

// DataGiB is the raw data capacity: volume size times the non-parity
// devices. It ignores ZFS metadata, raidz padding and slop space.
func (l Layout) DataGiB() int64 {
	switch l.Redundancy {
	case Stripe:
		return int64(l.Vdevs) * l.VolumeSizeGiB
	case Mirror:
		return int64(l.Vdevs) * l.VolumeSizeGiB
	default:
		return int64(l.Vdevs) * int64(l.Width-l.Redundancy.Parity()) * l.VolumeSizeGiB
	}
}

// UsableGiB estimates the usable capacity: DataGiB less ZFS's slop reserve
// (1/32 of the pool). Real figures are a few percent lower for raidz
// padding with small records.
func (l Layout) UsableGiB() int64 {
	d := l.DataGiB()
	return d - d/32
}
