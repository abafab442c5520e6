package poolplan

import (
	"fmt"
	"slices"
	"time"
)

// ModState is the state of an EBS volume modification.
type ModState string

// EBS modification states (DescribeVolumesModifications).
const (
	ModModifying  ModState = "modifying"
	ModOptimizing ModState = "optimizing"
	ModCompleted  ModState = "completed"
	ModFailed     ModState = "failed"
)

// Modification is one recorded ModifyVolume. EBS only reports the latest one
// per volume, so the workflow keeps this history itself.
type Modification struct {
	VolumeID      string    `json:"volume_id"`
	Start         time.Time `json:"start"`
	State         ModState  `json:"state"`
	TargetSizeGiB int64     `json:"target_size_gib"`
}

// The EBS modification-rate rule: at most ModsPerWindow modifications of one
// volume in any rolling ModWindow, and each must be completed before the
// next starts (Amazon EBS User Guide, "Requirements for EBS volume
// modifications"). Failed modifications are counted too: AWS does not say
// they are free, and counting them can only make zcloud wait longer.
const (
	ModsPerWindow = 4
	ModWindow     = 24 * time.Hour
)

// RateCheck is the verdict on modifying one volume now.
type RateCheck struct {
	// Allowed: a modification may start now.
	Allowed bool
	// InProgress: the latest modification has not completed; the time it
	// completes is unknown, so poll it.
	InProgress bool
	// NotBefore is when the window frees a slot (zero unless neither
	// Allowed nor InProgress).
	NotBefore time.Time
	Reason    string
}

// CheckModificationRate applies the rule to volumeID's history at now.
func CheckModificationRate(volumeID string, history []Modification, now time.Time) RateCheck {
	var starts []time.Time
	var latest *Modification
	for i := range history {
		m := &history[i]
		if m.VolumeID != volumeID {
			continue
		}
		if latest == nil || m.Start.After(latest.Start) {
			latest = m
		}
		if now.Sub(m.Start) < ModWindow {
			starts = append(starts, m.Start)
		}
	}
	if latest != nil && (latest.State == ModModifying || latest.State == ModOptimizing) {
		return RateCheck{InProgress: true, Reason: fmt.Sprintf("modification started %s is still %s; EBS requires it to complete first", latest.Start.UTC().Format(time.RFC3339), latest.State)}
	}
	if len(starts) < ModsPerWindow {
		return RateCheck{Allowed: true}
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	// The slot frees when enough old starts leave the window that fewer
	// than ModsPerWindow remain.
	free := starts[len(starts)-ModsPerWindow].Add(ModWindow)
	return RateCheck{NotBefore: free, Reason: fmt.Sprintf("%d modifications in the last 24 h (limit %d); next allowed at %s", len(starts), ModsPerWindow, free.UTC().Format(time.RFC3339))}
}
