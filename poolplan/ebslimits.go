package poolplan

import (
	"fmt"
	"slices"
)

// VolumeType is an EBS volume type.
type VolumeType string

// The EBS volume types zcloud knows the limits of.
const (
	GP2      VolumeType = "gp2"
	GP3      VolumeType = "gp3"
	IO1      VolumeType = "io1"
	IO2      VolumeType = "io2"
	ST1      VolumeType = "st1"
	SC1      VolumeType = "sc1"
	Standard VolumeType = "standard"
)

// VolumeLimits are AWS's per-type bounds for one EBS volume.
type VolumeLimits struct {
	MinGiB, MaxGiB int64
	// IOPS: zero MaxIOPS means IOPS cannot be provisioned for the type.
	MinIOPS, MaxIOPS int64
	MaxIOPSPerGiB    int64 // 0: no ratio rule
	IOPSRequired     bool
	// Throughput (MiB/s): zero MaxThroughput means not provisionable.
	MinThroughput, MaxThroughput int64
	// MaxThroughputPerIOPS is the gp3 rule 0.25 MiB/s per IOPS, kept as a
	// divisor (throughput*4 <= iops) to stay in integers.
	ThroughputPerIOPSDivisor int64
}

// ebsLimits is the EBS volume-type table, from the Amazon EBS User Guide
// "Amazon EBS volume types" (gp3 raised to 64 TiB / 80,000 IOPS / 2,000 MiB/s
// in September 2025; gp2, io1, st1 and sc1 stay at 16 TiB; io2 is Block
// Express everywhere: 4 GiB–64 TiB, up to 256,000 IOPS at 1,000 IOPS/GiB).
var ebsLimits = map[VolumeType]VolumeLimits{
	GP3:      {MinGiB: 1, MaxGiB: 65536, MinIOPS: 3000, MaxIOPS: 80000, MaxIOPSPerGiB: 500, MinThroughput: 125, MaxThroughput: 2000, ThroughputPerIOPSDivisor: 4},
	GP2:      {MinGiB: 1, MaxGiB: 16384},
	IO1:      {MinGiB: 4, MaxGiB: 16384, MinIOPS: 100, MaxIOPS: 64000, MaxIOPSPerGiB: 50, IOPSRequired: true},
	IO2:      {MinGiB: 4, MaxGiB: 65536, MinIOPS: 100, MaxIOPS: 256000, MaxIOPSPerGiB: 1000, IOPSRequired: true},
	ST1:      {MinGiB: 125, MaxGiB: 16384},
	SC1:      {MinGiB: 125, MaxGiB: 16384},
	Standard: {MinGiB: 1, MaxGiB: 1024},
}

// Limits returns the limits of t, or false for an unknown type.
func Limits(t VolumeType) (VolumeLimits, bool) {
	l, ok := ebsLimits[t]
	return l, ok
}

// VolumeTypes lists the known types in a stable order.
func VolumeTypes() []VolumeType {
	out := make([]VolumeType, 0, len(ebsLimits))
	for t := range ebsLimits {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// VolumeSpec is one volume's type, size and performance, as EBS sees it.
type VolumeSpec struct {
	Type       VolumeType `json:"type"`
	SizeGiB    int64      `json:"size_gib"`
	IOPS       int64      `json:"iops,omitempty"`       // 0: type default
	Throughput int64      `json:"throughput,omitempty"` // MiB/s, 0: type default
}

// FieldError names the field that broke a rule, so CLI and workflow errors
// point at the config key to fix.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// CheckVolume reports the first way s breaks AWS's limits for its type.
// Field names are prefixed with prefix (e.g. "layout.") for context.
func CheckVolume(prefix string, s VolumeSpec) error {
	l, ok := ebsLimits[s.Type]
	if !ok {
		return fieldErr(prefix+"volume_type", "unknown EBS volume type %q (known: %v)", s.Type, VolumeTypes())
	}
	if s.SizeGiB < l.MinGiB || s.SizeGiB > l.MaxGiB {
		return fieldErr(prefix+"volume_size_gib", "%d GiB is outside %s's range %d–%d GiB", s.SizeGiB, s.Type, l.MinGiB, l.MaxGiB)
	}
	if s.IOPS != 0 || l.IOPSRequired {
		if l.MaxIOPS == 0 {
			return fieldErr(prefix+"iops", "%s volumes do not take provisioned IOPS", s.Type)
		}
		if s.IOPS < l.MinIOPS || s.IOPS > l.MaxIOPS {
			return fieldErr(prefix+"iops", "%d IOPS is outside %s's range %d–%d", s.IOPS, s.Type, l.MinIOPS, l.MaxIOPS)
		}
		// gp3's baseline 3000 IOPS is allowed on any size; the ratio caps more.
		if l.MaxIOPSPerGiB > 0 && s.IOPS > l.MinIOPS && s.IOPS > s.SizeGiB*l.MaxIOPSPerGiB {
			return fieldErr(prefix+"iops", "%d IOPS exceeds %d IOPS per GiB for a %d GiB %s volume", s.IOPS, l.MaxIOPSPerGiB, s.SizeGiB, s.Type)
		}
	}
	if s.Throughput != 0 {
		if l.MaxThroughput == 0 {
			return fieldErr(prefix+"throughput", "%s volumes do not take provisioned throughput", s.Type)
		}
		if s.Throughput < l.MinThroughput || s.Throughput > l.MaxThroughput {
			return fieldErr(prefix+"throughput", "%d MiB/s is outside %s's range %d–%d MiB/s", s.Throughput, s.Type, l.MinThroughput, l.MaxThroughput)
		}
		iops := s.IOPS
		if iops == 0 {
			iops = l.MinIOPS
		}
		if l.ThroughputPerIOPSDivisor > 0 && s.Throughput > l.MinThroughput && s.Throughput*l.ThroughputPerIOPSDivisor > iops {
			return fieldErr(prefix+"throughput", "%d MiB/s needs at least %d IOPS (%s allows 1 MiB/s per %d IOPS)", s.Throughput, s.Throughput*l.ThroughputPerIOPSDivisor, s.Type, l.ThroughputPerIOPSDivisor)
		}
	}
	return nil
}
