package poolplan

import (
	"fmt"
	"time"
)

// GrowAction is what to do with one volume in an in-place grow.
type GrowAction string

// Grow actions.
const (
	// GrowModify: call ModifyVolume now.
	GrowModify GrowAction = "modify"
	// GrowWaitModification: a modification is running; poll until it
	// reaches optimizing/completed (then the device can be expanded).
	GrowWaitModification GrowAction = "wait-modification"
	// GrowWaitUntil: the rate limit is exhausted; sleep (durable timer)
	// until NotBefore and plan again.
	GrowWaitUntil GrowAction = "wait-until"
	// GrowDone: the volume is already at the new size.
	GrowDone GrowAction = "done"
	// GrowRefuse: the request is impossible for this volume.
	GrowRefuse GrowAction = "refuse"
)

// Volume is a pool member volume as EBS describes it now.
type Volume struct {
	ID      string     `json:"id"`
	Type    VolumeType `json:"type"`
	SizeGiB int64      `json:"size_gib"`
}

// GrowStep is the plan for one volume.
type GrowStep struct {
	VolumeID  string     `json:"volume_id"`
	Action    GrowAction `json:"action"`
	FromGiB   int64      `json:"from_gib"`
	ToGiB     int64      `json:"to_gib"`
	NotBefore time.Time  `json:"not_before,omitzero"`
	Reason    string     `json:"reason,omitempty"`
}

// GrowPlan is an in-place grow at one instant; re-plan after acting on it.
type GrowPlan struct {
	Steps []GrowStep `json:"steps"` // in the volumes' order
}

// Refused lists the steps that make the whole grow impossible.
func (p GrowPlan) Refused() []GrowStep { return p.filter(GrowRefuse) }

// ModifyNow lists the volumes to modify now.
func (p GrowPlan) ModifyNow() []GrowStep { return p.filter(GrowModify) }

// Done is true when every volume is at the target size.
func (p GrowPlan) Done() bool { return len(p.filter(GrowDone)) == len(p.Steps) }

// NextWake is the earliest NotBefore among waiting volumes (zero if none).
func (p GrowPlan) NextWake() time.Time {
	var t time.Time
	for _, s := range p.Steps {
		if s.Action == GrowWaitUntil && (t.IsZero() || s.NotBefore.Before(t)) {
			t = s.NotBefore
		}
	}
	return t
}

func (p GrowPlan) filter(a GrowAction) []GrowStep {
	var out []GrowStep
	for _, s := range p.Steps {
		if s.Action == a {
			out = append(out, s)
		}
	}
	return out
}

// GrowInPlacePlan decides, for each volume, whether it can be modified to
// newSizeGiB at now under EBS's size limits and modification-rate rule.
// history holds every modification zcloud made (any volumes, any age).
func GrowInPlacePlan(volumes []Volume, newSizeGiB int64, history []Modification, now time.Time) GrowPlan {
	plan := GrowPlan{Steps: make([]GrowStep, 0, len(volumes))}
	for _, v := range volumes {
		s := GrowStep{VolumeID: v.ID, FromGiB: v.SizeGiB, ToGiB: newSizeGiB}
		lim, known := ebsLimits[v.Type]
		latest := latestModification(v.ID, history)
		switch {
		case latest != nil && latest.TargetSizeGiB == newSizeGiB && latest.State == ModModifying:
			// Resumed after a crash: our own modification is underway. Once it
			// is optimizing the new size is usable, so that counts as done.
			s.Action, s.Reason = GrowWaitModification, "modification to the target size is still modifying"
		case newSizeGiB == v.SizeGiB:
			s.Action = GrowDone
		case newSizeGiB < v.SizeGiB:
			s.Action, s.Reason = GrowRefuse, fmt.Sprintf("EBS volumes cannot shrink (%d GiB → %d GiB)", v.SizeGiB, newSizeGiB)
		case !known:
			s.Action, s.Reason = GrowRefuse, fmt.Sprintf("unknown volume type %q", v.Type)
		case newSizeGiB > lim.MaxGiB:
			s.Action, s.Reason = GrowRefuse, fmt.Sprintf("%d GiB exceeds the %s maximum of %d GiB", newSizeGiB, v.Type, lim.MaxGiB)
		default:
			rc := CheckModificationRate(v.ID, history, now)
			switch {
			case rc.Allowed:
				s.Action = GrowModify
			case rc.InProgress:
				s.Action, s.Reason = GrowWaitModification, rc.Reason
			default:
				s.Action, s.NotBefore, s.Reason = GrowWaitUntil, rc.NotBefore, rc.Reason
			}
		}
		plan.Steps = append(plan.Steps, s)
	}
	return plan
}

func latestModification(volumeID string, history []Modification) *Modification {
	var latest *Modification
	for i := range history {
		if history[i].VolumeID == volumeID && (latest == nil || history[i].Start.After(latest.Start)) {
			latest = &history[i]
		}
	}
	return latest
}
