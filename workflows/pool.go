package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
	"zcloud/searchattr"
)

// Registered names of the pool workflows.
const (
	PoolCreateName  = "PoolCreate"
	PoolGrowName    = "PoolGrow"
	PoolScrubName   = "PoolScrub"
	PoolDestroyName = "PoolDestroy"
)

// PoolWorkflowID is the id of every operation on a pool (create, grow,
// scrub, destroy): one at a time per pool. A scrub started under another
// id (by the scrub Schedule) runs itself as a child under this one, so
// Temporal's one-running-workflow-per-id rule keeps scrubs and grows of a
// pool apart.
func PoolWorkflowID(pool string) string { return "pool/" + pool }

// PoolScrubScheduleID is the id of a pool's scrub Schedule (and the prefix
// of the workflow ids it starts: the server appends the scheduled time).
func PoolScrubScheduleID(pool string) string { return "pool-scrub/" + pool }

// Grow modes.
const (
	GrowInPlace        = "in-place"
	GrowRollingReplace = "rolling-replace"
)

// PoolInput names a configured pool.
type PoolInput struct {
	Pool string `json:"pool"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// PoolGrowInput grows a pool to volumes of SizeGiB.
type PoolGrowInput struct {
	Pool string `json:"pool"`
	Mode string `json:"mode"` // in-place or rolling-replace
	// SizeGiB is every volume's new size.
	SizeGiB int64 `json:"size_gib"`
	// VolumeType, IOPS, Throughput: the new volumes' (rolling replace
	// only; empty/0 keep the layout's).
	VolumeType string `json:"volume_type,omitempty"`
	IOPS       int64  `json:"iops,omitempty"`
	Throughput int64  `json:"throughput,omitempty"`
	// ParallelVdevs overrides the pool's parallel_vdevs (0: keep).
	ParallelVdevs int `json:"parallel_vdevs,omitempty"`
	// History adds modifications the volumes' tags do not hold.
	History []poolplan.Modification `json:"history,omitempty"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// PoolDestroyInput must repeat the pool's name in Confirm.
type PoolDestroyInput struct {
	Pool    string `json:"pool"`
	Confirm string `json:"confirm"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// PoolStatus answers the status query of every pool workflow.
type PoolStatus struct {
	Pool      string `json:"pool"`
	Operation string `json:"operation"`
	Phase     string `json:"phase"`
	// Plan is every step id in order; Done and Current are step ids.
	Plan     []string `json:"plan,omitempty"`
	Done     []string `json:"done,omitempty"`
	Current  []string `json:"current,omitempty"`
	Progress string   `json:"progress,omitempty"`
	// Volumes maps slots to the volumes created for them.
	Volumes map[string]string `json:"volumes,omitempty"`
	// Grow is the latest in-place plan.
	Grow         []poolplan.GrowStep                `json:"grow,omitempty"`
	WaitingUntil time.Time                          `json:"waiting_until,omitzero"`
	SizeBefore   uint64                             `json:"size_before,omitempty"`
	SizeAfter    uint64                             `json:"size_after,omitempty"`
	Scrub        *contract.ScrubReport              `json:"scrub,omitempty"`
	Resilvers    map[string]float64                 `json:"resilver_seconds,omitempty"`
	Destroyed    *contract.PoolDestroyVolumesReport `json:"destroyed,omitempty"`
	Error        string                             `json:"error,omitempty"`
}

// PoolResult is what a pool workflow returns.
type PoolResult struct {
	Pool       string                             `json:"pool"`
	Volumes    map[string]string                  `json:"volumes,omitempty"` // slot -> volume
	SizeBefore uint64                             `json:"size_before,omitempty"`
	SizeAfter  uint64                             `json:"size_after,omitempty"`
	Steps      int                                `json:"steps,omitempty"`
	Scrub      *contract.ScrubReport              `json:"scrub,omitempty"`
	Destroyed  *contract.PoolDestroyVolumesReport `json:"destroyed,omitempty"`
	Seconds    float64                            `json:"seconds"`
	// Skipped says why a scrub started outside the pool's operation id
	// did nothing ("skipped: grow in progress"); Holder is the operation
	// that held the id.
	Skipped string                  `json:"skipped,omitempty"`
	Holder  *contract.PoolOperation `json:"holder,omitempty"`
}

// tracker records the plan and the finished steps; the status query reads it.
type tracker struct {
	st      PoolStatus
	plan    []string
	done    map[string]bool
	running map[string]bool
}

func newTracker(ctx workflow.Context, op string, pool string) (*tracker, error) {
	t := &tracker{st: PoolStatus{Pool: pool, Operation: op, Phase: "starting"}, done: map[string]bool{}, running: map[string]bool{}}
	return t, workflow.SetQueryHandler(ctx, StatusQuery, func() (PoolStatus, error) { return t.snapshot(), nil })
}

func (t *tracker) snapshot() PoolStatus {
	s := t.st
	s.Plan = t.plan
	s.Done, s.Current = nil, nil
	for _, id := range t.plan {
		if t.done[id] {
			s.Done = append(s.Done, id)
		}
		if t.running[id] {
			s.Current = append(s.Current, id)
		}
	}
	if len(t.plan) > 0 {
		s.Progress = fmt.Sprintf("%d/%d steps", len(s.Done), len(t.plan))
	}
	return s
}

func (t *tracker) start(id string)  { t.running[id] = true }
func (t *tracker) finish(id string) { delete(t.running, id); t.done[id] = true }
func (t *tracker) stop(id string)   { delete(t.running, id) }

// clientToken is the idempotency token of a create step: stable across
// worker crashes and replays of this run, different for another run.
func clientToken(ctx workflow.Context, step string) string {
	info := workflow.GetInfo(ctx)
	h := sha256.Sum256([]byte(info.WorkflowExecution.ID + "\x00" + info.WorkflowExecution.RunID))
	return "zc-" + hex.EncodeToString(h[:8]) + "-" + strings.NewReplacer("/", "-").Replace(step)
}

// poolOpts are the activity options of pool steps: heartbeats (so a dead
// worker's step is retried elsewhere within the heartbeat timeout) and
// patient retries of transient failures.
func poolOpts(ctx workflow.Context, p config.Pool, startToClose time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    p.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: 2 * time.Minute, MaximumAttempts: 40},
	})
}

func settings(ctx workflow.Context, name string) (config.Pool, error) {
	var p config.Pool
	opts := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	err := workflow.ExecuteActivity(opts, contract.PoolSettings, name).Get(ctx, &p)
	return p, err
}

func badInput(msg string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(msg, args...), contract.ErrTypeConfig, nil)
}

// PoolCreate creates the pool's volumes (tagged with the pool and their
// slot, idempotent by token), attaches them, waits for their device nodes,
// optionally LUKS-formats and opens them, runs zpool create with the
// layout and exports the pool.
func PoolCreate(ctx workflow.Context, in PoolInput) (PoolResult, error) {
	if err := in.fields.refuse(PoolCreateName); err != nil {
		return PoolResult{}, err
	}
	begin := workflow.Now(ctx)
	t, err := newTracker(ctx, "create", in.Pool)
	if err != nil {
		return PoolResult{}, err
	}
	p, err := settings(ctx, in.Pool)
	if err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "settings", err)
	}
	l := p.Layout
	var slots [][]string
	for v := 0; v < l.Vdevs; v++ {
		var row []string
		for d := 0; d < l.Width; d++ {
			s := fmt.Sprintf("v%d/d%d", v, d)
			row = append(row, s)
			t.plan = append(t.plan, s+"/"+string(poolplan.StepCreate), s+"/"+string(poolplan.StepAttach))
			if p.LUKS.Enabled {
				t.plan = append(t.plan, s+"/"+string(poolplan.StepLUKSOpen))
			}
		}
		slots = append(slots, row)
	}
	t.plan = append(t.plan, "pool/zpool-create", "pool/export")
	short := poolOpts(ctx, p, 15*time.Minute)
	res := PoolResult{Pool: p.Name, Volumes: map[string]string{}}
	t.st.Volumes = res.Volumes

	// Volumes are independent: create them all at once.
	t.st.Phase = "creating volumes"
	futures := map[string]workflow.Future{}
	for _, row := range slots {
		for _, s := range row {
			id := s + "/" + string(poolplan.StepCreate)
			t.start(id)
			futures[s] = workflow.ExecuteActivity(short, contract.PoolCreateVolume, contract.PoolVolumeRequest{
				Pool: p, Slot: s, Token: clientToken(ctx, s), Spec: l.Volume()})
		}
	}
	var firstErr error
	for _, row := range slots {
		for _, s := range row {
			var v contract.Volume
			if err := futures[s].Get(ctx, &v); err != nil {
				t.stop(s + "/" + string(poolplan.StepCreate))
				if firstErr == nil {
					firstErr = failStep(&t.st.Phase, &t.st.Error, "create volume "+s, err)
				}
				continue
			}
			res.Volumes[s] = v.ID
			t.finish(s + "/" + string(poolplan.StepCreate))
		}
	}
	if firstErr != nil {
		return res, firstErr
	}
	// Attach one at a time: EC2 device names are picked per instance.
	t.st.Phase = "attaching volumes"
	var vdevs [][]string
	for _, row := range slots {
		var ids []string
		for _, s := range row {
			vol := res.Volumes[s]
			ids = append(ids, vol)
			step := s + "/" + string(poolplan.StepAttach)
			t.start(step)
			if err := workflow.ExecuteActivity(short, contract.PoolAttachVolume, contract.PoolDeviceRequest{Pool: p, VolumeID: vol}).Get(ctx, nil); err != nil {
				return res, failStep(&t.st.Phase, &t.st.Error, "attach "+vol, err)
			}
			t.finish(step)
			if p.LUKS.Enabled {
				step = s + "/" + string(poolplan.StepLUKSOpen)
				t.start(step)
				if err := workflow.ExecuteActivity(short, contract.PoolLUKSOpen, contract.PoolDeviceRequest{Pool: p, VolumeID: vol}).Get(ctx, nil); err != nil {
					return res, failStep(&t.st.Phase, &t.st.Error, "luks open "+vol, err)
				}
				t.finish(step)
			}
		}
		vdevs = append(vdevs, ids)
	}
	t.st.Phase = "zpool create"
	t.start("pool/zpool-create")
	if err := workflow.ExecuteActivity(short, contract.PoolZpoolCreate, contract.PoolCreateRequest{Pool: p, Vdevs: vdevs}).Get(ctx, nil); err != nil {
		return res, failStep(&t.st.Phase, &t.st.Error, "zpool create", err)
	}
	t.finish("pool/zpool-create")
	t.st.Phase = "export"
	t.start("pool/export")
	if err := workflow.ExecuteActivity(short, contract.PoolExport, p).Get(ctx, nil); err != nil {
		return res, failStep(&t.st.Phase, &t.st.Error, "export", err)
	}
	t.finish("pool/export")
	if err := unmount(ctx, t, p, true); err != nil {
		return res, err
	}
	t.st.Phase = "done"
	res.Steps = len(t.plan)
	res.Seconds = workflow.Now(ctx).Sub(begin).Seconds()
	return res, nil
}

// poolHandBackChange versions the mount and unmount steps of pools that
// sessions mount.
const poolHandBackChange = "pool-hands-back"

// handsBack says whether the pool is one that sessions mount: between
// operations its volumes are attached nowhere, so an operation attaches
// them to the pool's instance first (mount) and detaches them after the
// export (unmount).
func handsBack(ctx workflow.Context, p config.Pool) bool {
	return len(p.Sessions) > 0 && workflow.GetVersion(ctx, poolHandBackChange, workflow.DefaultVersion, 1) == 1
}

// mount attaches the pool's current volumes to the pool's instance (a
// pool that sessions mount).
func mount(ctx workflow.Context, t *tracker, p config.Pool) error {
	if !handsBack(ctx, p) {
		return nil
	}
	t.st.Phase = "mount"
	if err := workflow.ExecuteActivity(poolOpts(ctx, p, 30*time.Minute), contract.PoolMount, p).Get(ctx, nil); err != nil {
		return failStep(&t.st.Phase, &t.st.Error, "mount", err)
	}
	return nil
}

// unmount hands the exported pool back to its sessions: its volumes are
// detached from the pool's instance. exported says the pool was exported
// by this operation (one imported before it stays as it was).
func unmount(ctx workflow.Context, t *tracker, p config.Pool, exported bool) error {
	if !exported || !handsBack(ctx, p) {
		return nil
	}
	t.st.Phase = "unmount"
	if err := workflow.ExecuteActivity(poolOpts(ctx, p, 30*time.Minute), contract.PoolUnmount, p).Get(ctx, nil); err != nil {
		return failStep(&t.st.Phase, &t.st.Error, "unmount", err)
	}
	return nil
}

// openPool imports the pool if needed and inspects it.
func openPool(ctx workflow.Context, t *tracker, p config.Pool) (imported bool, st contract.PoolState, err error) {
	short := poolOpts(ctx, p, 15*time.Minute)
	if err := mount(ctx, t, p); err != nil {
		return false, st, err
	}
	t.st.Phase = "import"
	if err := workflow.ExecuteActivity(short, contract.PoolImport, p).Get(ctx, &imported); err != nil {
		return false, st, failStep(&t.st.Phase, &t.st.Error, "import", err)
	}
	t.st.Phase = "inspect"
	if err := workflow.ExecuteActivity(short, contract.PoolInspect, p).Get(ctx, &st); err != nil {
		return imported, st, failStep(&t.st.Phase, &t.st.Error, "inspect", err)
	}
	return imported, st, nil
}

// closePool exports the pool if this workflow imported it (and hands it
// back to its sessions).
func closePool(ctx workflow.Context, t *tracker, p config.Pool, imported bool) error {
	if !imported {
		return nil
	}
	t.st.Phase = "export"
	if err := workflow.ExecuteActivity(poolOpts(ctx, p, 15*time.Minute), contract.PoolExport, p).Get(ctx, nil); err != nil {
		return failStep(&t.st.Phase, &t.st.Error, "export", err)
	}
	return unmount(ctx, t, p, true)
}

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

// PoolScrub scrubs the pool (importing it first if needed) and reports
// repaired bytes and errors; a scrub that found any fails the workflow
// with that report, so schedules and notifications see it. Started under
// any id but the pool's operation id (a Schedule's run), it runs as a
// child under that id or, while another operation (a grow) holds it,
// skips: see scrubUnderPoolID.
func PoolScrub(ctx workflow.Context, in PoolInput) (PoolResult, error) {
	if err := in.fields.refuse(PoolScrubName); err != nil {
		return PoolResult{}, err
	}
	begin := workflow.Now(ctx)
	t, err := newTracker(ctx, "scrub", in.Pool)
	if err != nil {
		return PoolResult{}, err
	}
	if workflow.GetInfo(ctx).WorkflowExecution.ID != PoolWorkflowID(in.Pool) &&
		workflow.GetVersion(ctx, scrubUnderPoolIDChange, workflow.DefaultVersion, 1) == 1 {
		return scrubUnderPoolID(ctx, t, in)
	}
	p, err := settings(ctx, in.Pool)
	if err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "settings", err)
	}
	t.plan = []string{"pool/import", "pool/scrub", "pool/export"}
	var imported bool
	if err := mount(ctx, t, p); err != nil {
		return PoolResult{}, err
	}
	t.st.Phase = "import"
	t.start("pool/import")
	if err := workflow.ExecuteActivity(poolOpts(ctx, p, 15*time.Minute), contract.PoolImport, p).Get(ctx, &imported); err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "import", err)
	}
	t.finish("pool/import")
	t.st.Phase = "scrub"
	t.start("pool/scrub")
	var r contract.ScrubReport
	if err := workflow.ExecuteActivity(poolOpts(ctx, p, 7*24*time.Hour), contract.PoolScrub, p).Get(ctx, &r); err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "scrub", err)
	}
	t.finish("pool/scrub")
	t.st.Scrub = &r
	res := PoolResult{Pool: p.Name, Scrub: &r}
	t.start("pool/export")
	if err := closePool(ctx, t, p, imported); err != nil {
		return res, err
	}
	t.finish("pool/export")
	res.Seconds = workflow.Now(ctx).Sub(begin).Seconds()
	if !r.Clean() {
		return res, failStep(&t.st.Phase, &t.st.Error, "scrub", temporal.NewNonRetryableApplicationError(r.Summary(), contract.ErrTypeScrubErrors, nil))
	}
	t.st.Phase = "done"
	return res, nil
}

// scrubUnderPoolIDChange versions PoolScrub's taking of the pool's
// operation id (runs started before it scrub directly).
const scrubUnderPoolIDChange = "pool-scrub-under-pool-id"

// scrubUnderPoolID runs the scrub as a child workflow under the pool's
// operation id (pool/NAME), the id every grow, create and destroy runs
// under. Temporal starts at most one running workflow per id, durably and
// whatever the workers do, so a scrub and a grow of the same pool never
// overlap: when the id is taken the scrub does nothing and its result
// says why ("skipped: grow in progress"), and a grow started while the
// scrub runs is refused (the CLI names the scrub). The holder is
// described with a strongly consistent DescribeWorkflowExecution; if it
// finished in between, the start is tried again.
func scrubUnderPoolID(ctx workflow.Context, t *tracker, in PoolInput) (PoolResult, error) {
	id := PoolWorkflowID(in.Pool)
	t.plan = []string{id}
	t.start(id)
	quick := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	cctx := workflow.WithChildOptions(ctx, childJob(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: id,
		// The scrub exports the pool it imported: let it finish even if
		// this run is terminated.
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, searchattr.Job{Kind: searchattr.KindScrub, Pool: in.Pool}))
	for attempt := 1; ; attempt++ {
		t.st.Phase = "starting the scrub as " + id
		f := workflow.ExecuteChildWorkflow(cctx, PoolScrubName, in)
		var child workflow.Execution
		err := f.GetChildWorkflowExecution().Get(ctx, &child)
		if err == nil {
			t.st.Phase = "scrubbing as " + id + " run " + child.RunID
			var res PoolResult
			if err := f.Get(ctx, &res); err != nil {
				return res, failStep(&t.st.Phase, &t.st.Error, id, err)
			}
			t.finish(id)
			t.st.Scrub = res.Scrub
			t.st.Phase = "done"
			return res, nil
		}
		if !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "start "+id, err)
		}
		var op contract.PoolOperation
		if err := workflow.ExecuteActivity(quick, contract.PoolDescribeOperation, id).Get(ctx, &op); err != nil {
			return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "describe "+id, err)
		}
		if !op.Running && attempt < 3 {
			continue // it ended in between: take the id now
		}
		t.stop(id)
		reason := "skipped: " + operationName(op.Type) + " in progress"
		t.st.Phase = reason + " (" + id + " run " + op.RunID + ")"
		workflow.GetLogger(ctx).Info("scrub skipped", "pool", in.Pool, "reason", reason, "holder", id, "holder_run", op.RunID, "holder_type", op.Type)
		return PoolResult{Pool: in.Pool, Skipped: reason, Holder: &op}, nil
	}
}

// operationName is how a scrub's skip reason names the pool workflow type
// that holds the pool.
func operationName(workflowType string) string {
	switch workflowType {
	case PoolGrowName:
		return "grow"
	case PoolCreateName:
		return "create"
	case PoolScrubName:
		return "scrub"
	case PoolDestroyName:
		return "destroy"
	case PoolSessionName:
		return "session"
	}
	return "another operation"
}

// PoolDestroy destroys the zpool and deletes every volume tagged as the
// pool's, only when Confirm repeats the pool's name.
func PoolDestroy(ctx workflow.Context, in PoolDestroyInput) (PoolResult, error) {
	if err := in.fields.refuse(PoolDestroyName); err != nil {
		return PoolResult{}, err
	}
	begin := workflow.Now(ctx)
	t, err := newTracker(ctx, "destroy", in.Pool)
	if err != nil {
		return PoolResult{}, err
	}
	if in.Confirm != in.Pool || in.Pool == "" {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "confirm", badInput("destroying pool %q needs the confirmation %q, got %q", in.Pool, in.Pool, in.Confirm))
	}
	p, err := settings(ctx, in.Pool)
	if err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "settings", err)
	}
	t.plan = []string{"pool/zpool-destroy", "pool/delete-volumes"}
	short := poolOpts(ctx, p, 30*time.Minute)
	if err := mount(ctx, t, p); err != nil {
		return PoolResult{}, err
	}
	t.st.Phase = "zpool destroy"
	t.start("pool/zpool-destroy")
	if err := workflow.ExecuteActivity(short, contract.PoolDestroyZpool, p).Get(ctx, nil); err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "zpool destroy", err)
	}
	t.finish("pool/zpool-destroy")
	t.st.Phase = "delete volumes"
	t.start("pool/delete-volumes")
	var rep contract.PoolDestroyVolumesReport
	if err := workflow.ExecuteActivity(short, contract.PoolDestroyVolumes, p).Get(ctx, &rep); err != nil {
		return PoolResult{}, failStep(&t.st.Phase, &t.st.Error, "delete volumes", err)
	}
	t.finish("pool/delete-volumes")
	t.st.Destroyed = &rep
	t.st.Phase = "done"
	return PoolResult{Pool: p.Name, Destroyed: &rep, Seconds: workflow.Now(ctx).Sub(begin).Seconds()}, nil
}
