package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
)

// PoolGrow grows every volume of the pool to SizeGiB, in place or by
// rolling replace.
func PoolGrow(ctx workflow.Context, in PoolGrowInput) (PoolResult, error) {
	if err := in.fields.refuse(PoolGrowName); err != nil {
		return PoolResult{}, err
	}
	begin := workflow.Now(ctx)
	t, err := newTracker(ctx, "grow "+in.Mode, in.Pool)
	if err != nil {
		return PoolResult{}, err
	}
	if in.Mode != GrowInPlace && in.Mode != GrowRollingReplace {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "input", badInput("mode must be %s or %s, not %q", GrowInPlace, GrowRollingReplace, in.Mode))
	}
	if in.SizeGiB <= 0 {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "input", badInput("a new size in GiB is required"))
	}
	p, err := settings(ctx, in.Pool)
	if err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "settings", err)
	}
	// The new volumes must be within the configured pool's grow caps,
	// checked before anything is touched (the volume activities check again).
	if workflow.GetVersion(ctx, "grow-caps", workflow.DefaultVersion, 1) == 1 {
		if field, why := p.GrowRefusal(growSpec(p, in)); field != "" {
			return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "input", temporal.NewNonRetryableApplicationError(
				field+": not allowed; "+why, contract.ErrTypeNotAllowed, nil))
		}
	}
	imported, st, err := openPool(ctx, t, p)
	if err != nil {
		return PoolResult{}, err
	}
	res := PoolResult{Pool: p.Name, SizeBefore: st.SizeBytes}
	t.st.SizeBefore = st.SizeBytes
	if st.Resilvering {
		return res, failStep(&t.st.Phase, &t.st.Error, "inspect", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("pool %s is resilvering (%s); grow it when the resilver has finished", p.Name, st.Scan), contract.ErrTypePoolUnsafe, nil))
	}
	if len(st.Foreign) > 0 {
		return res, failStep(&t.st.Phase, &t.st.Error, "inspect", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("pool %s has devices that are not EBS volumes: %v", p.Name, st.Foreign), contract.ErrTypePoolUnsafe, nil))
	}
	if in.Mode == GrowInPlace {
		err = growInPlace(ctx, t, p, in, st, &res)
	} else {
		err = growRolling(ctx, t, p, in, st, &res)
	}
	if err != nil {
		return res, err
	}
	if err := closePool(ctx, t, p, imported); err != nil {
		return res, err
	}
	t.st.Phase = "done"
	res.Steps = len(t.done)
	res.Seconds = workflow.Now(ctx).Sub(begin).Seconds()
	return res, nil
}

// growSpec is the volume a grow asks for: the layout's, at the new size,
// with the input's type, IOPS and throughput where it names them (a new
// type starts from that type's baseline).
func growSpec(p config.Pool, in PoolGrowInput) poolplan.VolumeSpec {
	spec := p.Layout.Volume()
	spec.SizeGiB = in.SizeGiB
	if in.VolumeType != "" && poolplan.VolumeType(in.VolumeType) != spec.Type {
		spec.Type = poolplan.VolumeType(in.VolumeType)
		spec.IOPS, spec.Throughput = 0, 0
	}
	if in.IOPS != 0 {
		spec.IOPS = in.IOPS
	}
	if in.Throughput != 0 {
		spec.Throughput = in.Throughput
	}
	return spec
}

// growRolling drives poolplan's rolling-replace plan: a scrub first (a
// scrub that repaired anything or found errors stops the grow before any
// device is touched), then per vdev one device at a time, up to
// ParallelVdevs vdevs at once. Finished step ids are kept in a
// RollingState; after a worker crash the workflow replays to the same plan
// and state and goes on at the step it was in, and every step is
// idempotent on its own.
func growRolling(ctx workflow.Context, t *tracker, p config.Pool, in PoolGrowInput, st contract.PoolState, res *PoolResult) error {
	spec := growSpec(p, in)
	par := in.ParallelVdevs
	if par == 0 {
		par = p.ParallelVdevs
	}
	if par > p.ParallelVdevs {
		// The config's parallel_vdevs is a maximum: more concurrent
		// resilvers than the operator allowed could exhaust the host.
		return failStep(&t.st.Phase, &t.st.Error, "input", temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"parallel_vdevs: not allowed; pool %s allows at most %d in the configuration", p.Name, p.ParallelVdevs), contract.ErrTypeNotAllowed, nil))
	}
	plan, err := poolplan.RollingReplacePlan(poolplan.RollingInput{Vdevs: st.PlanVdevs(), New: spec, ParallelVdevs: par, LUKS: p.LUKS.Enabled})
	if err != nil {
		return failStep(&t.st.Phase, &t.st.Error, "plan", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeConfig, nil))
	}
	for _, s := range plan.Steps() {
		t.plan = append(t.plan, s.ID)
	}
	state := poolplan.NewRollingState()
	t.st.Volumes = state.NewVolumes
	t.st.Resilvers = map[string]float64{}
	short := poolOpts(ctx, p, 15*time.Minute)
	long := poolOpts(ctx, p, 7*24*time.Hour)

	attaching := false
	// doStep runs one step to the end (in its own workflow coroutine, so
	// steps of different vdevs run concurrently).
	doStep := func(ctx workflow.Context, step poolplan.Step) error {
		oldID, newID := step.OldVolumeID, state.NewVolumes[step.Slot]
		dev := contract.PoolDeviceRequest{Pool: p, VolumeID: newID}
		old := contract.PoolDeviceRequest{Pool: p, VolumeID: oldID}
		rep := contract.PoolReplaceRequest{Pool: p, OldVolumeID: oldID, NewVolumeID: newID}
		switch step.Kind {
		case poolplan.StepScrub:
			t.st.Phase = "scrub before replacing"
			var r contract.ScrubReport
			if err := workflow.ExecuteActivity(long, contract.PoolScrub, p).Get(ctx, &r); err != nil {
				return err
			}
			t.st.Scrub = &r
			if !r.Clean() {
				return temporal.NewNonRetryableApplicationError(r.Summary()+": stopping before any device is touched; find the cause, `zpool clear`, then grow again",
					contract.ErrTypeScrubErrors, nil)
			}
			t.st.Phase = "replacing"
			return nil
		case poolplan.StepCreate:
			var v contract.Volume
			if err := workflow.ExecuteActivity(short, contract.PoolCreateVolume, contract.PoolVolumeRequest{Pool: p, Slot: step.Slot,
				Token: clientToken(ctx, step.Slot+"/new"), Spec: step.New, Replaces: oldID}).Get(ctx, &v); err != nil {
				return err
			}
			state.SetNewVolume(step.Slot, v.ID)
			return nil
		case poolplan.StepAttach:
			// One attach at a time per instance: EC2 device names are
			// picked from the instance's free ones (moto does not even
			// refuse a name already in use).
			if err := workflow.Await(ctx, func() bool { return !attaching }); err != nil {
				return err
			}
			attaching = true
			defer func() { attaching = false }()
			return workflow.ExecuteActivity(short, contract.PoolAttachVolume, dev).Get(ctx, nil)
		case poolplan.StepLUKSOpen:
			return workflow.ExecuteActivity(short, contract.PoolLUKSOpen, dev).Get(ctx, nil)
		case poolplan.StepReplace:
			return workflow.ExecuteActivity(short, contract.PoolReplace, rep).Get(ctx, nil)
		case poolplan.StepWaitResilver:
			var r contract.ResilverReport
			if err := workflow.ExecuteActivity(long, contract.PoolWaitResilver, rep).Get(ctx, &r); err != nil {
				return err
			}
			t.st.Resilvers[step.Slot] = r.Seconds
			return nil
		case poolplan.StepVerifyHealthy:
			// long: it may wait out a resilver another vdev's replace started.
			return workflow.ExecuteActivity(long, contract.PoolVerifyReplaced, rep).Get(ctx, nil)
		case poolplan.StepLUKSCloseOld:
			return workflow.ExecuteActivity(short, contract.PoolLUKSClose, old).Get(ctx, nil)
		case poolplan.StepDetachOld:
			return workflow.ExecuteActivity(short, contract.PoolDetachVolume, old).Get(ctx, nil)
		case poolplan.StepDeleteOld:
			return workflow.ExecuteActivity(short, contract.PoolDeleteVolume, old).Get(ctx, nil)
		case poolplan.StepVerifyPool:
			t.st.Phase = "expand and verify"
			var r contract.PoolExpandResult
			if err := workflow.ExecuteActivity(short, contract.PoolExpand, contract.PoolExpandRequest{Pool: p, VolumeIDs: sortedNew(state)}).Get(ctx, &r); err != nil {
				return err
			}
			var after contract.PoolState
			if err := workflow.ExecuteActivity(short, contract.PoolInspect, p).Get(ctx, &after); err != nil {
				return err
			}
			if !after.Healthy || after.Resilvering {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("pool %s is %s after the grow", p.Name, after.Health), contract.ErrTypePoolUnsafe, nil)
			}
			for _, v := range after.Volumes() {
				if v.SizeGiB < spec.SizeGiB || v.Type != spec.Type {
					return temporal.NewNonRetryableApplicationError(fmt.Sprintf("volume %s is still %s %d GiB", v.ID, v.Type, v.SizeGiB), contract.ErrTypePoolUnsafe, nil)
				}
			}
			res.SizeAfter, t.st.SizeAfter = after.SizeBytes, after.SizeBytes
			return nil
		}
		return temporal.NewNonRetryableApplicationError("unknown step kind "+string(step.Kind), contract.ErrTypeConfig, nil)
	}

	sel := workflow.NewSelector(ctx)
	running := 0
	var firstErr error
	for {
		if firstErr == nil {
			for _, step := range plan.Next(state) {
				if t.running[step.ID] {
					continue
				}
				t.start(step.ID)
				running++
				f, set := workflow.NewFuture(ctx)
				workflow.Go(ctx, func(gctx workflow.Context) { set.Set(nil, doStep(gctx, step)) })
				sel.AddFuture(f, func(f workflow.Future) {
					running--
					if err := f.Get(ctx, nil); err != nil {
						t.stop(step.ID)
						if firstErr == nil {
							firstErr = failStep(&t.st.Phase, &t.st.Error, string(step.Kind)+" "+step.ID, err)
						}
						return
					}
					state.MarkDone(step.ID)
					t.finish(step.ID)
				})
			}
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	res.Volumes = state.NewVolumes
	return firstErr
}

// sortedNew lists the new volumes in slot order (map order is random).
func sortedNew(s poolplan.RollingState) []string {
	slots := make([]string, 0, len(s.NewVolumes))
	for k := range s.NewVolumes {
		slots = append(slots, k)
	}
	slices.Sort(slots)
	out := make([]string, len(slots))
	for i, k := range slots {
		out[i] = s.NewVolumes[k]
	}
	return out
}

// growInPlace modifies each volume to the new size under EBS's rules
// (poolplan.GrowInPlacePlan), waits for the modifications on durable
// timers, and expands the pool. When the 4-per-24-h rule (or a running
// modification) forbids a modification now, the workflow sleeps on a
// timer until the plan's NextWake and plans again; it never fails for that.
func growInPlace(ctx workflow.Context, t *tracker, p config.Pool, in PoolGrowInput, st contract.PoolState, res *PoolResult) error {
	short := poolOpts(ctx, p, 15*time.Minute)
	vols := st.Volumes()
	history := slices.Clone(in.History)
	for _, v := range vols {
		history = append(history, v.Modifications...)
	}
	planVols := func() []poolplan.Volume {
		out := make([]poolplan.Volume, len(vols))
		for i, v := range vols {
			out[i] = v.Volume
		}
		return out
	}
	deferred := map[string]time.Time{} // volume -> not before (from ModifyVolume itself)
	for round := 0; ; round++ {
		if round > 10000 {
			return failStep(&t.st.Phase, &t.st.Error, "grow", temporal.NewNonRetryableApplicationError("in-place grow makes no progress", contract.ErrTypePoolUnsafe, nil))
		}
		now := workflow.Now(ctx)
		plan := poolplan.GrowInPlacePlan(planVols(), in.SizeGiB, history, now)
		t.st.Grow = plan.Steps
		t.st.WaitingUntil = time.Time{}
		if t.plan == nil {
			for _, s := range plan.Steps {
				t.plan = append(t.plan, s.VolumeID+"/modify", s.VolumeID+"/"+"wait-modification")
			}
			t.plan = append(t.plan, "pool/expand")
		}
		if r := plan.Refused(); len(r) > 0 {
			var why []string
			for _, s := range r {
				why = append(why, s.VolumeID+": "+s.Reason)
			}
			return failStep(&t.st.Phase, &t.st.Error, "plan", temporal.NewNonRetryableApplicationError("cannot grow in place: "+strings.Join(why, "; "), contract.ErrTypeConfig, nil))
		}
		if plan.Done() {
			break
		}
		var waitMods []string
		for _, s := range plan.Steps {
			if s.Action == poolplan.GrowWaitModification {
				waitMods = append(waitMods, s.VolumeID)
			}
		}
		t.st.Phase = "modifying volumes"
		for _, s := range plan.ModifyNow() {
			if nb, ok := deferred[s.VolumeID]; ok && now.Before(nb) {
				continue
			}
			id := s.VolumeID + "/modify"
			t.start(id)
			var r contract.PoolModifyResult
			err := workflow.ExecuteActivity(short, contract.PoolModifyVolume, contract.PoolModifyRequest{Pool: p, VolumeID: s.VolumeID,
				SizeGiB: in.SizeGiB, History: history, Now: now}).Get(ctx, &r)
			if err != nil {
				return failStep(&t.st.Phase, &t.st.Error, "modify "+s.VolumeID, err)
			}
			switch {
			case r.Deferred && r.NotBefore.IsZero():
				t.stop(id)
				waitMods = append(waitMods, s.VolumeID)
			case r.Deferred:
				t.stop(id)
				deferred[s.VolumeID] = r.NotBefore
			case r.Unchanged:
				t.finish(id)
			default:
				t.finish(id)
				history = append(history, r.Modification)
				waitMods = append(waitMods, s.VolumeID)
			}
		}
		if len(waitMods) > 0 {
			t.st.Phase = "waiting for volume modifications"
			for _, vol := range waitMods {
				id := vol + "/wait-modification"
				t.start(id)
				for {
					var m contract.VolumeModification
					if err := workflow.ExecuteActivity(short, contract.PoolCheckModification, contract.PoolDeviceRequest{Pool: p, VolumeID: vol}).Get(ctx, &m); err != nil {
						return failStep(&t.st.Phase, &t.st.Error, "modification of "+vol, err)
					}
					for i := range history {
						if history[i].VolumeID == vol && m.VolumeID == vol && history[i].TargetSizeGiB == m.TargetSizeGiB &&
							(history[i].State == poolplan.ModModifying || history[i].State == poolplan.ModOptimizing) {
							history[i].State = m.State
						}
					}
					own := m.TargetSizeGiB == in.SizeGiB
					if m.State == poolplan.ModCompleted || own && m.State == poolplan.ModOptimizing {
						break
					}
					if err := workflow.Sleep(ctx, p.PollInterval); err != nil {
						return failStep(&t.st.Phase, &t.st.Error, "modification of "+vol, err)
					}
				}
				t.finish(id)
			}
			t.st.Phase = "expanding"
			t.start("pool/expand")
			var ids []string
			for _, v := range vols {
				ids = append(ids, v.ID)
			}
			var er contract.PoolExpandResult
			if err := workflow.ExecuteActivity(short, contract.PoolExpand, contract.PoolExpandRequest{Pool: p, VolumeIDs: ids}).Get(ctx, &er); err != nil {
				return failStep(&t.st.Phase, &t.st.Error, "expand", err)
			}
			t.stop("pool/expand")
			var after contract.PoolState
			if err := workflow.ExecuteActivity(short, contract.PoolInspect, p).Get(ctx, &after); err != nil {
				return failStep(&t.st.Phase, &t.st.Error, "inspect", err)
			}
			vols = after.Volumes()
			continue
		}
		// Nothing could start: sleep until the rate limit frees a slot.
		wake := plan.NextWake()
		for _, nb := range deferred {
			if wake.IsZero() || nb.Before(wake) {
				wake = nb
			}
		}
		if wake.IsZero() || !wake.After(now) {
			wake = now.Add(p.PollInterval)
		}
		t.st.Phase = "waiting for the EBS modification limit (4 per volume per 24 h) until " + wake.UTC().Format(time.RFC3339)
		t.st.WaitingUntil = wake
		if err := workflow.Sleep(ctx, wake.Sub(now)); err != nil {
			return failStep(&t.st.Phase, &t.st.Error, "wait for modification limit", err)
		}
	}
	t.start("pool/expand")
	var er contract.PoolExpandResult
	var ids []string
	for _, v := range vols {
		ids = append(ids, v.ID)
	}
	if err := workflow.ExecuteActivity(short, contract.PoolExpand, contract.PoolExpandRequest{Pool: p, VolumeIDs: ids}).Get(ctx, &er); err != nil {
		return failStep(&t.st.Phase, &t.st.Error, "expand", err)
	}
	t.finish("pool/expand")
	res.SizeAfter, t.st.SizeAfter = er.SizeBytes, er.SizeBytes
	return nil
}
