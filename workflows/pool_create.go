package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/poolplan"
)

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
