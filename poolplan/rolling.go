package poolplan

import (
	"fmt"
)

// StepKind is one kind of rolling-replace step.
type StepKind string

// Rolling-replace steps, in the order each device goes through them. The
// old volume is only detached and deleted after its replacement resilvered
// and the pool was verified healthy.
const (
	StepScrub         StepKind = "scrub"          // pool: scrub; stop the plan if it finds errors
	StepCreate        StepKind = "create-volume"  // new volume (ClientToken = plan id + step id)
	StepAttach        StepKind = "attach"         // attach the new volume to the instance
	StepLUKSOpen      StepKind = "luks-open"      // LUKS-format and open the new device (key on stdin)
	StepReplace       StepKind = "zpool-replace"  // zpool replace old new
	StepWaitResilver  StepKind = "wait-resilver"  // until the resilver finished
	StepVerifyHealthy StepKind = "verify-healthy" // pool ONLINE, no errors, old device gone
	StepLUKSCloseOld  StepKind = "luks-close-old" // close the old device's mapping
	StepDetachOld     StepKind = "detach-old"     // detach the old volume
	StepDeleteOld     StepKind = "delete-old"     // delete the old volume
	StepVerifyPool    StepKind = "verify-pool"    // pool: healthy and expanded (zpool online -e)
)

// Step is one idempotent unit of a rolling replace. ID is stable for the
// same input, so a workflow can record it as done and resume after it.
type Step struct {
	ID     string   `json:"id"`
	Kind   StepKind `json:"kind"`
	Vdev   int      `json:"vdev"`   // -1 for pool steps
	Device int      `json:"device"` // -1 for pool steps
	// Slot ("v1/d2") names the device position; State.NewVolumes is keyed by it.
	Slot        string     `json:"slot,omitempty"`
	OldVolumeID string     `json:"old_volume_id,omitempty"`
	New         VolumeSpec `json:"new"`
}

// RollingInput describes the pool to replace into larger (or other-type)
// volumes.
type RollingInput struct {
	// Vdevs lists each vdev's current volumes in zpool order.
	Vdevs [][]Volume `json:"vdevs"`
	New   VolumeSpec `json:"new"`
	// ParallelVdevs is how many vdevs may be mid-replacement at once (≥1).
	ParallelVdevs int  `json:"parallel_vdevs"`
	LUKS          bool `json:"luks"`
}

// RollingPlan is the ordered steps of a rolling replace: a scrub, then one
// lane of steps per vdev (one device at a time), then a final check.
type RollingPlan struct {
	Scrub    Step     `json:"scrub"`
	Lanes    [][]Step `json:"lanes"` // per vdev; empty for vdevs already at the target
	Final    Step     `json:"final"`
	Parallel int      `json:"parallel"`
}

// RollingState is what a workflow records while driving a plan.
type RollingState struct {
	Done map[string]bool `json:"done"`
	// NewVolumes maps a slot to the volume created for it.
	NewVolumes map[string]string `json:"new_volumes"`
}

// NewRollingState returns an empty state.
func NewRollingState() RollingState {
	return RollingState{Done: map[string]bool{}, NewVolumes: map[string]string{}}
}

// MarkDone records a finished step.
func (s *RollingState) MarkDone(stepID string) {
	if s.Done == nil {
		s.Done = map[string]bool{}
	}
	s.Done[stepID] = true
}

// SetNewVolume records the volume created for slot.
func (s *RollingState) SetNewVolume(slot, volumeID string) {
	if s.NewVolumes == nil {
		s.NewVolumes = map[string]string{}
	}
	s.NewVolumes[slot] = volumeID
}

// RollingReplacePlan builds the plan, refusing shrinks and invalid targets.
// Devices already of the new type and at least the new size get no steps.
func RollingReplacePlan(in RollingInput) (RollingPlan, error) {
	if len(in.Vdevs) == 0 {
		return RollingPlan{}, fieldErr("vdevs", "no vdevs to replace")
	}
	if err := CheckVolume("new.", in.New); err != nil {
		return RollingPlan{}, err
	}
	par := in.ParallelVdevs
	if par < 1 {
		par = 1
	}
	seen := map[string]bool{}
	plan := RollingPlan{
		Scrub:    Step{ID: "pool/" + string(StepScrub), Kind: StepScrub, Vdev: -1, Device: -1},
		Final:    Step{ID: "pool/" + string(StepVerifyPool), Kind: StepVerifyPool, Vdev: -1, Device: -1, New: in.New},
		Parallel: par,
		Lanes:    make([][]Step, len(in.Vdevs)),
	}
	for vi, vdev := range in.Vdevs {
		if len(vdev) == 0 {
			return RollingPlan{}, fieldErr(fmt.Sprintf("vdevs[%d]", vi), "empty vdev")
		}
		for di, old := range vdev {
			field := fmt.Sprintf("vdevs[%d][%d]", vi, di)
			if old.ID == "" || seen[old.ID] {
				return RollingPlan{}, fieldErr(field, "missing or duplicate volume id %q", old.ID)
			}
			seen[old.ID] = true
			if in.New.SizeGiB < old.SizeGiB {
				return RollingPlan{}, fieldErr("new.volume_size_gib", "%d GiB is smaller than %s (%d GiB): zpool replace needs a device at least as large", in.New.SizeGiB, old.ID, old.SizeGiB)
			}
			if old.Type == in.New.Type && old.SizeGiB >= in.New.SizeGiB {
				continue
			}
			plan.Lanes[vi] = append(plan.Lanes[vi], deviceSteps(vi, di, old.ID, in.New, in.LUKS)...)
		}
	}
	return plan, nil
}

func deviceSteps(vdev, dev int, oldID string, spec VolumeSpec, luks bool) []Step {
	kinds := []StepKind{StepCreate, StepAttach}
	if luks {
		kinds = append(kinds, StepLUKSOpen)
	}
	kinds = append(kinds, StepReplace, StepWaitResilver, StepVerifyHealthy)
	if luks {
		kinds = append(kinds, StepLUKSCloseOld)
	}
	kinds = append(kinds, StepDetachOld, StepDeleteOld)
	slot := fmt.Sprintf("v%d/d%d", vdev, dev)
	steps := make([]Step, len(kinds))
	for i, k := range kinds {
		steps[i] = Step{ID: slot + "/" + string(k), Kind: k, Vdev: vdev, Device: dev, Slot: slot, OldVolumeID: oldID, New: spec}
	}
	return steps
}

// Steps lists every step in the order a single-lane run would take.
func (p RollingPlan) Steps() []Step {
	out := []Step{p.Scrub}
	for _, l := range p.Lanes {
		out = append(out, l...)
	}
	return append(out, p.Final)
}

// Next returns the steps to run now: the scrub alone first; then the next
// step of each vdev being worked on, at most Parallel vdevs at a time, in
// vdev order; then the final check alone. Empty means the plan is finished.
// Steps returned together are independent and may run concurrently.
func (p RollingPlan) Next(s RollingState) []Step {
	if !s.Done[p.Scrub.ID] {
		return []Step{p.Scrub}
	}
	var started, fresh []Step
	for _, lane := range p.Lanes {
		next, begun := nextInLane(lane, s)
		if next == nil {
			continue
		}
		if begun {
			started = append(started, *next)
		} else {
			fresh = append(fresh, *next)
		}
	}
	if len(started)+len(fresh) == 0 {
		if s.Done[p.Final.ID] {
			return nil
		}
		return []Step{p.Final}
	}
	// Lanes already begun go first so a resumed run finishes what it began.
	out := started
	for _, st := range fresh {
		if len(out) >= p.Parallel {
			break
		}
		out = append(out, st)
	}
	return out
}

// Progress counts done and total steps, for the workflow's status query.
func (p RollingPlan) Progress(s RollingState) (done, total int) {
	all := p.Steps()
	for _, st := range all {
		if s.Done[st.ID] {
			done++
		}
	}
	return done, len(all)
}

func nextInLane(lane []Step, s RollingState) (next *Step, begun bool) {
	for i := range lane {
		if s.Done[lane[i].ID] {
			begun = true
			continue
		}
		return &lane[i], begun
	}
	return nil, begun
}
