package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
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
