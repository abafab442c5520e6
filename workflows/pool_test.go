package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
)

var pt0 = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

// fakePool is the world the mocked pool activities act on: volumes in
// vdevs, their sizes, and the calls made, with workflow time.
type fakePool struct {
	mu      sync.Mutex
	env     *testsuite.TestWorkflowEnvironment
	vdevs   [][]contract.PoolVolume
	calls   []string
	at      map[string]time.Time
	scrub   contract.ScrubReport
	created int
	attach  map[string]int
}

func newFakePool(env *testsuite.TestWorkflowEnvironment, vdevs, width int, size int64) *fakePool {
	f := &fakePool{env: env, at: map[string]time.Time{}, attach: map[string]int{}}
	for v := 0; v < vdevs; v++ {
		var row []contract.PoolVolume
		for d := 0; d < width; d++ {
			row = append(row, contract.PoolVolume{Volume: poolplan.Volume{ID: fmt.Sprintf("vol-%d%d", v, d), Type: poolplan.GP3, SizeGiB: size}})
		}
		f.vdevs = append(f.vdevs, row)
	}
	f.scrub = contract.ScrubReport{Healthy: true}
	return f
}

func (f *fakePool) call(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	f.at[s] = f.env.Now()
}

func (f *fakePool) index(s string) int { return slices.Index(f.calls, s) }

func (f *fakePool) settings() config.Pool {
	return config.Pool{Name: "tank", Target: "inst", InstanceID: "i-0123456789abcdef0", AvailabilityZone: "us-east-1a",
		Layout:        poolplan.Layout{Vdevs: len(f.vdevs), Width: len(f.vdevs[0]), Redundancy: poolplan.RaidZ1, VolumeType: poolplan.GP3, VolumeSizeGiB: 10},
		ParallelVdevs: 2, PollInterval: time.Minute, HeartbeatTimeout: time.Minute, DeviceDir: "/dev/disk/by-id"}
}

func (f *fakePool) mock(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.OnActivity(a.PoolSettings, mock.Anything, "tank").Return(f.settings(), nil)
	env.OnActivity(a.PoolImport, mock.Anything, mock.Anything).Return(false, nil)
	env.OnActivity(a.PoolExport, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(a.PoolInspect, mock.Anything, mock.Anything).Return(func(context.Context, config.Pool) (contract.PoolState, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		st := contract.PoolState{Name: "tank", Health: "ONLINE", Healthy: true, SizeBytes: uint64(f.vdevs[0][0].SizeGiB) << 30}
		for _, row := range f.vdevs {
			st.Vdevs = append(st.Vdevs, slices.Clone(row))
		}
		return st, nil
	})
	env.OnActivity(a.PoolScrub, mock.Anything, mock.Anything).Return(func(context.Context, config.Pool) (contract.ScrubReport, error) {
		f.call("scrub")
		return f.scrub, nil
	})
	env.OnActivity(a.PoolCreateVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolVolumeRequest) (contract.Volume, error) {
		f.call(r.Slot + "/create")
		f.mu.Lock()
		f.created++
		f.mu.Unlock()
		return contract.Volume{ID: "new-" + r.Replaces, SizeGiB: r.Spec.SizeGiB, Type: r.Spec.Type}, nil
	})
	env.OnActivity(a.PoolAttachVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolDeviceRequest) (contract.PoolAttachResult, error) {
		f.call("attach " + r.VolumeID)
		f.mu.Lock()
		f.attach[r.VolumeID]++
		f.mu.Unlock()
		return contract.PoolAttachResult{VolumeID: r.VolumeID}, nil
	})
	env.OnActivity(a.PoolReplace, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolReplaceRequest) error {
		f.call("replace " + r.OldVolumeID)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, row := range f.vdevs {
			for i := range row {
				if row[i].ID == r.OldVolumeID {
					row[i].ID = r.NewVolumeID
					row[i].SizeGiB = 20
				}
			}
		}
		return nil
	})
	env.OnActivity(a.PoolWaitResilver, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolReplaceRequest) (contract.ResilverReport, error) {
		f.call("resilvered " + r.OldVolumeID)
		return contract.ResilverReport{}, nil
	})
	env.OnActivity(a.PoolVerifyReplaced, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolReplaceRequest) error {
		f.call("verified " + r.OldVolumeID)
		return nil
	})
	env.OnActivity(a.PoolDetachVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolDeviceRequest) error {
		f.call("detach " + r.VolumeID)
		return nil
	})
	env.OnActivity(a.PoolDeleteVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolDeviceRequest) error {
		f.call("delete " + r.VolumeID)
		return nil
	})
	env.OnActivity(a.PoolExpand, mock.Anything, mock.Anything).Return(func(context.Context, contract.PoolExpandRequest) (contract.PoolExpandResult, error) {
		f.call("expand")
		f.mu.Lock()
		defer f.mu.Unlock()
		return contract.PoolExpandResult{SizeBytes: uint64(f.vdevs[0][0].SizeGiB) << 30}, nil
	})
	env.OnActivity(a.PoolModifyVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolModifyRequest) (contract.PoolModifyResult, error) {
		// What the real activity (ec2.ModifyVolume) enforces.
		if rc := poolplan.CheckModificationRate(r.VolumeID, r.History, r.Now); !rc.Allowed {
			return contract.PoolModifyResult{}, temporal.NewNonRetryableApplicationError("rate limit: "+rc.Reason, "VolumeModificationRateExceeded", nil)
		}
		f.call("modify " + r.VolumeID)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, row := range f.vdevs {
			for i := range row {
				if row[i].ID == r.VolumeID {
					row[i].SizeGiB = r.SizeGiB
				}
			}
		}
		return contract.PoolModifyResult{Modification: poolplan.Modification{VolumeID: r.VolumeID, Start: r.Now, State: poolplan.ModModifying, TargetSizeGiB: r.SizeGiB}}, nil
	})
	env.OnActivity(a.PoolCheckModification, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.PoolDeviceRequest) (contract.VolumeModification, error) {
		return contract.VolumeModification{VolumeID: r.VolumeID, State: poolplan.ModOptimizing, TargetSizeGiB: 20}, nil
	})
}

func TestPoolGrowInPlaceWaitsOnATimerForTheFifthModification(t *testing.T) {
	env := newEnv(t)
	env.SetStartTime(pt0)
	f := newFakePool(env, 1, 2, 10)
	// vol-00 was modified 4 times in the last 24 h: the oldest 20 h ago.
	for i, ago := range []time.Duration{20 * time.Hour, 15 * time.Hour, 10 * time.Hour, 5 * time.Hour} {
		f.vdevs[0][0].Modifications = append(f.vdevs[0][0].Modifications,
			poolplan.Modification{VolumeID: "vol-00", Start: pt0.Add(-ago), State: poolplan.ModCompleted, TargetSizeGiB: int64(6 + i)})
	}
	f.mock(env)
	var waiting PoolStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StatusQuery)
		if err != nil {
			t.Error(err)
			return
		}
		v.Get(&waiting)
	}, time.Hour)
	env.ExecuteWorkflow(PoolGrow, PoolGrowInput{Pool: "tank", Mode: GrowInPlace, SizeGiB: 20})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%t err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	free := pt0.Add(4 * time.Hour) // the oldest leaves the 24 h window
	if at := f.at["modify vol-01"]; !at.Equal(pt0) {
		t.Errorf("vol-01 (no history) modified at %v, want at once", at)
	}
	if at, ok := f.at["modify vol-00"]; !ok || at.Before(free) {
		t.Errorf("vol-00 (4 in 24 h) modified at %v, want not before %v", at, free)
	}
	if !strings.Contains(waiting.Phase, "waiting for the EBS modification limit") || !waiting.WaitingUntil.Equal(free) {
		t.Errorf("status an hour in: phase %q until %v, want waiting until %v", waiting.Phase, waiting.WaitingUntil, free)
	}
	var res PoolResult
	if err := env.GetWorkflowResult(&res); err != nil || res.SizeAfter != 20<<30 {
		t.Fatalf("result %+v %v", res, err)
	}
}

func TestPoolGrowRollingOrderParallelAndOneAttachPerVolume(t *testing.T) {
	env := newEnv(t)
	f := newFakePool(env, 2, 3, 10)
	f.mock(env)
	env.ExecuteWorkflow(PoolGrow, PoolGrowInput{Pool: "tank", Mode: GrowRollingReplace, SizeGiB: 20})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if f.calls[0] != "scrub" || f.calls[len(f.calls)-1] != "expand" {
		t.Fatalf("calls %v: want scrub first, expand last", f.calls)
	}
	for v := 0; v < 2; v++ {
		for d := 0; d < 3; d++ {
			old := fmt.Sprintf("vol-%d%d", v, d)
			seq := []string{fmt.Sprintf("v%d/d%d/create", v, d), "attach new-" + old, "replace " + old, "resilvered " + old, "verified " + old, "detach " + old, "delete " + old}
			for i := 1; i < len(seq); i++ {
				if f.index(seq[i-1]) < 0 || f.index(seq[i-1]) > f.index(seq[i]) {
					t.Errorf("%s: %q (at %d) not before %q (at %d)", old, seq[i-1], f.index(seq[i-1]), seq[i], f.index(seq[i]))
				}
			}
			if d > 0 && f.index(fmt.Sprintf("v%d/d%d/create", v, d)) < f.index(fmt.Sprintf("delete vol-%d%d", v, d-1)) {
				t.Errorf("vdev %d: device %d started before device %d was done", v, d, d-1)
			}
			if f.attach["new-"+old] != 1 {
				t.Errorf("new-%s attached %d times", old, f.attach["new-"+old])
			}
		}
	}
	// parallel_vdevs 2: vdev 1 starts before vdev 0 finishes.
	if f.index("v1/d0/create") > f.index("delete vol-02") {
		t.Error("vdevs were not replaced in parallel")
	}
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st PoolStatus
	v.Get(&st)
	if st.Phase != "done" || st.Progress != "44/44 steps" || len(st.Volumes) != 6 {
		t.Fatalf("status %+v", st)
	}
}

func TestPoolGrowRollingStopsOnScrubErrorsBeforeTouchingADevice(t *testing.T) {
	env := newEnv(t)
	f := newFakePool(env, 2, 3, 10)
	f.scrub = contract.ScrubReport{Pool: "tank", RepairedBytes: 4096, DeviceErrors: 3, Healthy: false}
	f.mock(env)
	env.ExecuteWorkflow(PoolGrow, PoolGrowInput{Pool: "tank", Mode: GrowRollingReplace, SizeGiB: 20})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "repaired 4096 bytes") || !strings.Contains(err.Error(), "before any device is touched") {
		t.Fatalf("error %v", err)
	}
	if f.created != 0 || len(f.calls) != 1 {
		t.Fatalf("calls after a dirty scrub: %v", f.calls)
	}
}

func TestPoolDestroyNeedsTheNameAsConfirmation(t *testing.T) {
	env := newEnv(t)
	// No activity is mocked: calling one would fail the test.
	env.ExecuteWorkflow(PoolDestroy, PoolDestroyInput{Pool: "tank", Confirm: "yes"})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), `needs the confirmation "tank"`) {
		t.Fatalf("error %v", err)
	}
}

func TestClientTokenIsStableAndShort(t *testing.T) {
	env := newEnv(t)
	env.ExecuteWorkflow(func(ctx workflow.Context) ([]string, error) {
		return []string{clientToken(ctx, "v12/d34/new"), clientToken(ctx, "v12/d34/new"), clientToken(ctx, "v0/d0")}, nil
	})
	var toks []string
	if err := env.GetWorkflowResult(&toks); err != nil {
		t.Fatal(err)
	}
	if toks[0] != toks[1] || toks[0] == toks[2] || len(toks[0]) > 64 || strings.Contains(toks[0], "/") {
		t.Fatalf("tokens %v", toks)
	}
}

// A scrub started under another id (a Schedule's run) takes the pool's
// operation id: it runs as a child under pool/NAME.
func TestPoolScrubFromAScheduleRunsUnderThePoolID(t *testing.T) {
	env := newEnv(t)
	f := newFakePool(env, 1, 2, 10)
	f.mock(env)
	var scrubbedBy []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "PoolScrub" {
			scrubbedBy = append(scrubbedBy, info.WorkflowExecution.ID)
		}
	})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: PoolScrubScheduleID("tank") + "-2026-05-04T03:00:00Z"})
	env.ExecuteWorkflow(PoolScrub, PoolInput{Pool: "tank"})
	var res PoolResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Skipped != "" || res.Scrub == nil || !res.Scrub.Clean() {
		t.Fatalf("result %+v", res)
	}
	if !slices.Equal(scrubbedBy, []string{PoolWorkflowID("tank")}) {
		t.Fatalf("PoolScrub activity run by %v, want once by %s", scrubbedBy, PoolWorkflowID("tank"))
	}
}

// While a grow holds pool/NAME, a scheduled scrub does nothing and says so.
func TestPoolScrubFromAScheduleSkipsWhileAGrowHoldsThePool(t *testing.T) {
	env := newEnv(t)
	f := newFakePool(env, 1, 2, 10)
	f.mock(env)
	var a *activities.Activities
	env.OnActivity(a.PoolDescribeOperation, mock.Anything, PoolWorkflowID("tank")).Return(contract.PoolOperation{WorkflowID: PoolWorkflowID("tank"), RunID: "grow-run", Type: PoolGrowName, Running: true}, nil)
	// The workflow under test stands for the grow: it holds pool/tank and
	// meanwhile the Schedule's scrub starts.
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: PoolWorkflowID("tank")})
	env.ExecuteWorkflow(func(ctx workflow.Context) (PoolResult, error) {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: PoolScrubScheduleID("tank") + "-2026-05-04T03:00:00Z"})
		var r PoolResult
		err := workflow.ExecuteChildWorkflow(cctx, PoolScrubName, PoolInput{Pool: "tank"}).Get(ctx, &r)
		return r, err
	})
	var res PoolResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Skipped != "skipped: grow in progress" || res.Holder == nil || res.Holder.RunID != "grow-run" || res.Scrub != nil {
		t.Fatalf("result %+v", res)
	}
	if len(f.calls) != 0 {
		t.Fatalf("calls of a skipped scrub: %v", f.calls)
	}
}
