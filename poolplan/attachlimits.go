package poolplan

import (
	"fmt"
	"strings"
)

// AttachLimit is how many EBS volumes an instance type can hold.
type AttachLimit struct {
	// Max is the attachment limit of the instance type.
	Max int
	// Shared is true where network interfaces and NVMe instance-store
	// volumes use the same slots as EBS volumes (most Nitro types).
	Shared bool
	// Source says which table row decided, for messages and docs.
	Source string
}

// The instance-volume-limit table, from the Amazon EC2 User Guide "Amazon EBS
// volume limits for Amazon EC2 instances":
//
//   - Dedicated EBS limit (not shared with ENIs or instance store): M7a, M7i,
//     M7i-flex, M8g, C7a, C7i, C7i-flex, C8g, R7a, R7i, R7iz, R8g, X8g, G6,
//     G6e, Gr6, I7ie, I8g. By size: medium..12xlarge 32, 16xlarge 48,
//     24xlarge 64, 32xlarge 88, 48xlarge 128, metal-16xl/metal-24xl 39,
//     metal-32xl/metal-48xl 79.
//   - Other Nitro types: 28 attachments shared between EBS volumes, network
//     interfaces and NVMe instance-store volumes.
//   - Xen types (t2, m4, c4, r4, x1, i3, d2, ...): up to 40 EBS volumes is the
//     supported figure for Linux; more risk boot failures.
//
// Unknown families are treated as shared Nitro (28), the common and safe case.
var dedicatedFamilies = set("m7a", "m7i", "m7i-flex", "m8g", "c7a", "c7i", "c7i-flex", "c8g",
	"r7a", "r7i", "r7iz", "r8g", "x8g", "g6", "g6e", "gr6", "i7ie", "i8g")

var dedicatedBySize = map[string]int{
	"medium": 32, "large": 32, "xlarge": 32, "2xlarge": 32, "4xlarge": 32, "8xlarge": 32, "12xlarge": 32,
	"16xlarge": 48, "24xlarge": 64, "32xlarge": 88, "48xlarge": 128,
	"metal-16xl": 39, "metal-24xl": 39, "metal-32xl": 79, "metal-48xl": 79,
}

var xenFamilies = set("t1", "t2", "m1", "m2", "m3", "m4", "c1", "c3", "c4", "r3", "r4",
	"x1", "x1e", "i2", "i3", "d2", "g2", "g3", "p2", "p3", "f1", "h1", "cc2", "cr1", "hs1")

// SharedNitroLimit is the attachment limit of most Nitro instance types.
const SharedNitroLimit = 28

// XenLimit is the supported EBS volume count on Xen instance types (Linux).
const XenLimit = 40

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// InstanceAttachLimit looks instanceType (e.g. "m7i.2xlarge") up in the table.
func InstanceAttachLimit(instanceType string) (AttachLimit, error) {
	family, size, ok := strings.Cut(instanceType, ".")
	if !ok || family == "" || size == "" {
		return AttachLimit{}, fieldErr("instance_type", "%q is not an instance type like m7i.large", instanceType)
	}
	switch {
	case dedicatedFamilies[family]:
		n, ok := dedicatedBySize[size]
		if !ok {
			n = 32 // smallest dedicated figure for sizes the table lacks
		}
		return AttachLimit{Max: n, Source: fmt.Sprintf("dedicated EBS limit (%s, size %s)", family, size)}, nil
	case xenFamilies[family]:
		return AttachLimit{Max: XenLimit, Source: fmt.Sprintf("Xen instance type (%s)", family)}, nil
	default:
		return AttachLimit{Max: SharedNitroLimit, Shared: true, Source: fmt.Sprintf("Nitro shared limit (%s)", family)}, nil
	}
}

// Instance describes what else occupies attachment slots on the instance.
type Instance struct {
	Type string `json:"type"`
	// RootVolumes is the number of EBS volumes the AMI attaches (usually 1).
	RootVolumes int `json:"root_volumes"`
	// NetworkInterfaces and InstanceStoreVolumes count only where the
	// limit is shared; 1 ENI is always there.
	NetworkInterfaces    int `json:"network_interfaces"`
	InstanceStoreVolumes int `json:"instance_store_volumes"`
}

// DataVolumeSlots is how many data EBS volumes fit on inst.
func DataVolumeSlots(inst Instance) (int, AttachLimit, error) {
	lim, err := InstanceAttachLimit(inst.Type)
	if err != nil {
		return 0, lim, err
	}
	root := inst.RootVolumes
	if root == 0 {
		root = 1
	}
	used := root
	if lim.Shared {
		enis := inst.NetworkInterfaces
		if enis == 0 {
			enis = 1
		}
		used += enis + inst.InstanceStoreVolumes
	}
	return max(lim.Max-used, 0), lim, nil
}
