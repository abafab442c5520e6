package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
)

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
