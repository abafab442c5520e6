package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/retention"
	"zcloud/searchattr"
)

// SessionName is the registered name of Session.
const SessionName = "Session"

// SessionInput names the ec2 target; everything else comes from the
// worker's config (PlanSession), so a Schedule stays valid across config
// changes.
type SessionInput struct {
	Target string `json:"target"`
	// SnapshotPrefix names the snapshots this session takes (default "zcloud").
	SnapshotPrefix string `json:"snapshot_prefix,omitempty"`
	// HeartbeatTimeout for the sends (default 12s); tests shorten it.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// Phases of a session (besides the shared PhasePlanning, PhaseDone,
// PhaseFailed, PhaseCancelled).
const (
	PhaseLaunching   = "launching"
	PhaseWaitingSSH  = "waiting-ssh"
	PhaseUnlocking   = "unlocking"
	PhaseImporting   = "importing"
	PhaseReplicating = "replicating"
	PhaseInterrupted = "interrupted"
	PhaseExporting   = "exporting"
	PhaseLocking     = "locking"
	PhaseReleasing   = "releasing"
)

// DatasetProgress is one replication's state in the session.
type DatasetProgress struct {
	Source        string `json:"source"`
	TargetDataset string `json:"target_dataset"`
	// State: pending, running, done, failed, interrupted (will continue on
	// the next instance).
	State string `json:"state"`
	// ChildID is the running (or last) Replicate child workflow; its
	// pending send shows the bytes (zcloud session status prints them).
	ChildID string `json:"child_id,omitempty"`
	Runs    int    `json:"runs"`
	Bytes   int64  `json:"bytes"`
	Kind    string `json:"kind,omitempty"` // full, incremental, resumed, up to date
	Error   string `json:"error,omitempty"`
}

// SessionInstanceInfo is one instance the session used.
type SessionInstanceInfo struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Market      string    `json:"market"`
	Host        string    `json:"host"`
	Started     time.Time `json:"started"`
	Released    time.Time `json:"released,omitzero"`
	Interrupted bool      `json:"interrupted,omitempty"`
	// Volumes are the pool's volumes attached to it (a mounted pool).
	Volumes []string `json:"volumes,omitempty"`
}

// SessionStatus answers the status query.
type SessionStatus struct {
	Target        string                `json:"target"`
	Phase         string                `json:"phase"`
	Snapshot      string                `json:"snapshot,omitempty"`
	Instances     []SessionInstanceInfo `json:"instances,omitempty"`
	Interruptions int                   `json:"interruptions"`
	Datasets      []DatasetProgress     `json:"datasets,omitempty"`
	Cost          string                `json:"cost,omitempty"`
	Error         string                `json:"error,omitempty"`
}

// SessionResult is the session's outcome.
type SessionResult struct {
	Status  SessionStatus        `json:"status"`
	Cost    contract.CostReport  `json:"cost"`
	Seconds float64              `json:"seconds"`
	Notice  *contract.SpotNotice `json:"last_notice,omitempty"`
	Plan    contract.SessionPlan `json:"plan"`
}

// session is one run's state; its methods are workflow code.
type session struct {
	in   SessionInput
	plan contract.SessionPlan
	st   SessionStatus
	res  SessionResult

	// What is held now, for the teardown and the compensations. token is
	// the current launch's client token: a launch that failed half way
	// may have made an instance the workflow never heard of.
	token    string
	inst     *contract.SessionInstance
	instIdx  int
	unlocked bool
	imported bool
	// hold is the PoolSession child holding the pool's operation id.
	hold       workflow.ChildWorkflowFuture
	holdCancel workflow.CancelFunc
}

// Session is the daily backup session to an EC2 target: launch (or start)
// the instance → wait for SSH with the injected host key → unlock → import
// the pool → replicate every configured dataset to it (child Replicate
// workflows, bounded parallelism) → export → lock → terminate (or stop).
// Every acquired resource is given back on failure and on cancellation.
// On a spot interruption notice the replications are cancelled cleanly,
// the instance is given back, and a replacement continues the same
// snapshots; after K interruptions replacements are on demand.
func Session(ctx workflow.Context, in SessionInput) (SessionResult, error) {
	if err := in.fields.refuse(SessionName, floor{"heartbeat_timeout", in.HeartbeatTimeout}); err != nil {
		return SessionResult{}, err
	}
	s := &session{in: in, st: SessionStatus{Target: in.Target, Phase: PhasePlanning}}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (SessionStatus, error) { return s.st, nil }); err != nil {
		return SessionResult{}, err
	}
	begin := workflow.Now(ctx)
	if in.Target == "" {
		return SessionResult{}, temporal.NewNonRetryableApplicationError("a target is required", contract.ErrTypeConfig, nil)
	}
	err := s.run(ctx)

	// Give back whatever is still held: after a failure, and after a
	// cancellation (with a context the cancellation does not reach).
	cancelled := ctx.Err() != nil
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if terr := s.teardown(dctx, err != nil); terr != nil && err == nil {
		err = terr
	}
	s.releasePool(dctx)
	s.cost(dctx)
	s.res.Seconds = workflow.Now(ctx).Sub(begin).Seconds()
	switch {
	case cancelled:
		s.st.Phase = PhaseCancelled
		s.st.Error = "cancelled"
		s.notify(dctx, "cancelled")
		s.res.Status = s.st
		return s.res, temporal.NewCanceledError()
	case err != nil:
		msg, typ := rootCause(err)
		s.st.Phase, s.st.Error = PhaseFailed, msg
		s.notify(dctx, msg)
		s.res.Status = s.st
		return s.res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("session %s: %s", in.Target, msg), typ, nil)
	}
	s.st.Phase = PhaseDone
	s.res.Status = s.st
	return s.res, nil
}

func (s *session) opts(ctx workflow.Context, startToClose, heartbeat time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    heartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: attempts},
	})
}

func (s *session) run(ctx workflow.Context) error {
	quick := s.opts(ctx, 2*time.Minute, 0, 3)
	if err := workflow.ExecuteActivity(quick, contract.PlanSession, s.in.Target).Get(ctx, &s.plan); err != nil {
		return failStep(nil, nil, "plan", err)
	}
	s.res.Plan = s.plan
	if s.plan.MountsPool {
		if err := s.holdPool(ctx); err != nil {
			return err
		}
	}
	prefix := s.in.SnapshotPrefix
	if prefix == "" {
		prefix = retention.DefaultPrefix
	}
	// One snapshot name for the whole session: a replacement instance
	// continues the same snapshots.
	s.st.Snapshot = retention.SnapshotName(prefix, workflow.Now(ctx))
	for _, r := range s.plan.Replications {
		s.st.Datasets = append(s.st.Datasets, DatasetProgress{Source: r.Source, TargetDataset: r.TargetDataset, State: "pending"})
	}
	for gen := 0; ; gen++ {
		if err := s.acquire(ctx, gen); err != nil {
			return err
		}
		interrupted, err := s.replicateAll(ctx, gen)
		if err != nil {
			return err
		}
		if !interrupted {
			break
		}
		// The instance is going away: stop cleanly (ZFS keeps partial
		// receive state where it can resume), give it back, and go on with
		// a replacement.
		s.st.Interruptions++
		s.st.Instances[s.instIdx].Interrupted = true
		s.st.Phase = PhaseInterrupted
		if err := s.teardown(ctx, true); err != nil {
			return err
		}
	}
	if err := s.teardown(ctx, false); err != nil {
		return err
	}
	var failed []string
	for _, d := range s.st.Datasets {
		if d.State != "done" {
			failed = append(failed, fmt.Sprintf("%s -> %s: %s", d.Source, d.TargetDataset, d.Error))
		}
	}
	if len(failed) > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d of %d replications failed: %s",
			len(failed), len(s.st.Datasets), strings.Join(failed, "; ")), "ReplicationFailed", nil)
	}
	return nil
}

// sessionClientToken is the launch's idempotency token: from the workflow's id and
// run and the instance's generation, so every retry of the launch activity
// finds the instance the first attempt made, and nothing else does.
func sessionClientToken(ctx workflow.Context, gen int, onDemand bool) string {
	info := workflow.GetInfo(ctx)
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d|%t", info.WorkflowExecution.ID, info.WorkflowExecution.RunID, gen, onDemand))
	return "zc-" + hex.EncodeToString(sum[:])[:40]
}

// acquire gets a running, reachable, unlocked instance with the pool imported.
func (s *session) acquire(ctx workflow.Context, gen int) error {
	s.st.Phase = PhaseLaunching
	var inst contract.SessionInstance
	if s.plan.Mode == "start-stop" {
		f := workflow.ExecuteActivity(s.opts(ctx, 15*time.Minute, time.Minute, 5), contract.StartInstance, s.plan.Target)
		if err := f.Get(ctx, &inst); err != nil {
			return failStep(nil, nil, "start instance", err)
		}
	} else {
		onDemand := s.plan.Market == "spot" && s.st.Interruptions >= s.plan.SpotInterruptions
		req := contract.LaunchRequest{Target: s.plan.Target, ClientToken: sessionClientToken(ctx, gen, onDemand), OnDemand: onDemand}
		s.token = req.ClientToken
		f := workflow.ExecuteActivity(s.opts(ctx, 15*time.Minute, time.Minute, 5), contract.LaunchInstance, req)
		if err := f.Get(ctx, &inst); err != nil {
			return failStep(nil, nil, "launch", err)
		}
	}
	s.inst = &inst
	s.instIdx = len(s.st.Instances)
	s.st.Instances = append(s.st.Instances, SessionInstanceInfo{ID: inst.Instance.ID, Type: inst.Instance.Type,
		Market: string(inst.Instance.Market), Host: inst.At.Host, Started: workflow.Now(ctx), Volumes: inst.Volumes})
	s.res.Status.Instances = s.st.Instances

	step := contract.SessionStep{Target: s.plan.Target, At: inst.At, Volumes: inst.Volumes}
	s.st.Phase = PhaseWaitingSSH
	wait := s.opts(ctx, s.plan.SSHTimeout+time.Minute, 30*time.Second, 3)
	wstep := step
	wstep.Wait = s.plan.Wait
	if err := workflow.ExecuteActivity(wait, contract.WaitSSH, wstep).Get(ctx, nil); err != nil {
		return failStep(nil, nil, fmt.Sprintf("wait for SSH on %s", inst.Instance.ID), err)
	}
	onHost := s.opts(ctx, 5*time.Minute, 0, 5)
	unlock := func() error {
		s.st.Phase = PhaseUnlocking
		s.unlocked = true // from here on, lock is part of the teardown
		if err := workflow.ExecuteActivity(onHost, contract.Unlock, step).Get(ctx, nil); err != nil {
			return failStep(nil, nil, "unlock", err)
		}
		return nil
	}
	// A LUKS or command unlock opens the devices the pool is on; a ZFS
	// key is loaded into the imported pool.
	if s.plan.UnlockMethod != "zfs" && s.plan.UnlockMethod != "none" {
		if err := unlock(); err != nil {
			return err
		}
	}
	s.st.Phase = PhaseImporting
	s.imported = true
	if err := workflow.ExecuteActivity(onHost, contract.ImportPool, step).Get(ctx, nil); err != nil {
		return failStep(nil, nil, "import pool", err)
	}
	if s.plan.UnlockMethod == "zfs" {
		return unlock()
	}
	return nil
}

// replicateAll runs a Replicate child per dataset not yet done, at most
// Parallelism at a time, with the spot watcher beside them. It returns
// interrupted when a spot notice cancelled them.
func (s *session) replicateAll(ctx workflow.Context, gen int) (interrupted bool, err error) {
	s.st.Phase = PhaseReplicating
	at := s.inst.At
	repCtx, cancelReps := workflow.WithCancel(ctx)
	defer cancelReps()
	watchCtx, cancelWatch := workflow.WithCancel(ctx)
	defer cancelWatch()

	notice := false
	if s.inst.Instance.Market == contract.MarketSpot {
		hb := max(3*s.plan.SpotPollInterval, 30*time.Second)
		wctx := workflow.WithActivityOptions(watchCtx, workflow.ActivityOptions{
			StartToCloseTimeout: 48 * time.Hour, HeartbeatTimeout: hb,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, MaximumInterval: 30 * time.Second},
		})
		f := workflow.ExecuteActivity(wctx, contract.WatchSpot, contract.SessionStep{Target: s.plan.Target, At: at})
		workflow.Go(watchCtx, func(gctx workflow.Context) {
			var n *contract.SpotNotice
			if err := f.Get(gctx, &n); err == nil && n != nil {
				notice = true
				s.res.Notice = n
				cancelReps()
			}
		})
	}

	running := 0
	wfID := workflow.GetInfo(ctx).WorkflowExecution.ID
	hb := s.in.HeartbeatTimeout
	for i := range s.st.Datasets {
		if s.st.Datasets[i].State == "done" {
			continue
		}
		if err := workflow.Await(ctx, func() bool { return running < s.plan.Parallelism || notice }); err != nil {
			break // cancelled: wait for the children below
		}
		if notice {
			break
		}
		r := s.plan.Replications[i]
		d := &s.st.Datasets[i]
		d.State, d.Error = "running", ""
		d.Runs++
		d.ChildID = fmt.Sprintf("%s/replicate/%d/g%d", wfID, i, gen)
		running++
		child := workflow.WithChildOptions(repCtx, childJob(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: d.ChildID,
			// Wait until the child really stopped (its receive is killed)
			// before exporting the pool under it.
			WaitForCancellation: true,
		}, searchattr.Job{Kind: searchattr.KindReplicate, Datasets: []string{r.Source}, Target: s.plan.Target}))
		in := ReplicateInput{Source: r.Source, Target: s.plan.Target, TargetDataset: r.TargetDataset, Raw: r.Raw, AllowPlaintext: r.AllowPlaintext,
			Snapshot: s.st.Snapshot, HeartbeatTimeout: hb, TargetInstance: at.Instance}
		f := workflow.ExecuteChildWorkflow(child, ReplicateName, in)
		workflow.Go(repCtx, func(gctx workflow.Context) {
			defer func() { running-- }()
			var res ReplicateResult
			// A disconnected context: the result is read even when the
			// session is being cancelled.
			dctx, _ := workflow.NewDisconnectedContext(gctx)
			err := f.Get(dctx, &res)
			switch {
			case err == nil:
				d.State, d.Bytes, d.Kind = "done", res.Send.Bytes, sendKind(res.Send)
			case notice && temporal.IsCanceledError(err):
				d.State = "interrupted"
			case temporal.IsCanceledError(err):
				d.State, d.Error = "cancelled", "cancelled"
			default:
				msg, _ := rootCause(err)
				d.State, d.Error = "failed", msg
			}
		})
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return running == 0 })
	cancelWatch()
	if ctx.Err() != nil {
		return false, temporal.NewCanceledError()
	}
	return notice, nil
}

func sendKind(s contract.SendReport) string {
	switch {
	case s.AlreadyDone:
		return "up to date"
	case s.Resumed:
		return "resumed"
	case s.Full:
		return "full"
	}
	return "incremental from " + s.From
}

// teardown gives back what is held: export, lock, release the instance.
// Every step is tried even when one before failed (the instance must never
// be left running); the first error is returned. quick shortens retries
// (after a failure or a spot notice nothing waits on a slow export).
func (s *session) teardown(ctx workflow.Context, quick bool) error {
	if s.inst == nil {
		if s.token == "" {
			return nil
		}
		// The launch failed: terminate whatever it may have made.
		s.inst, s.instIdx = &contract.SessionInstance{}, -1
	}
	var first error
	note := func(step string, err error) {
		if err != nil && first == nil {
			first = failStep(nil, nil, step, err)
		}
	}
	step := contract.SessionStep{Target: s.plan.Target, At: s.inst.At, Volumes: s.inst.Volumes}
	attempts := int32(6)
	if quick {
		attempts = 4
	}
	onHost := s.opts(ctx, 3*time.Minute, 0, attempts)
	if s.imported {
		s.st.Phase = PhaseExporting
		note("export pool", workflow.ExecuteActivity(onHost, contract.ExportPool, step).Get(ctx, nil))
		s.imported = false
	}
	if s.unlocked {
		s.st.Phase = PhaseLocking
		note("lock", workflow.ExecuteActivity(onHost, contract.Lock, step).Get(ctx, nil))
		s.unlocked = false
	}
	s.st.Phase = PhaseReleasing
	// Releasing must succeed: retried for up to an hour.
	release := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute, HeartbeatTimeout: time.Minute, ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	req := contract.ReleaseRequest{Target: s.plan.Target, InstanceID: s.inst.Instance.ID, ClientToken: s.token}
	note("release instance "+s.inst.Instance.ID, workflow.ExecuteActivity(release, contract.ReleaseInstance, req).Get(ctx, nil))
	if s.instIdx >= 0 {
		s.st.Instances[s.instIdx].Released = workflow.Now(ctx)
	}
	s.inst, s.token = nil, ""
	return first
}

// cost prices the instances used; a failure leaves the cost line saying so.
func (s *session) cost(ctx workflow.Context) {
	if len(s.st.Instances) == 0 {
		return
	}
	req := contract.CostRequest{Target: s.plan.Target}
	for _, i := range s.st.Instances {
		end := i.Released
		if end.IsZero() {
			end = workflow.Now(ctx)
		}
		req.Uses = append(req.Uses, contract.InstanceUse{
			Instance: contract.Instance{ID: i.ID, Type: i.Type, Market: contract.Market(i.Market)},
			Seconds:  end.Sub(i.Started).Seconds()})
	}
	if err := workflow.ExecuteActivity(s.opts(ctx, time.Minute, 0, 3), contract.SessionCost, req).Get(ctx, &s.res.Cost); err != nil {
		msg, _ := rootCause(err)
		s.st.Cost = "unknown: " + msg
		return
	}
	s.st.Cost = s.res.Cost.Line
}

// notify reports a failed or cancelled session, best effort.
func (s *session) notify(ctx workflow.Context, msg string) {
	if !s.plan.Notify {
		return
	}
	ev := contract.NotifyEvent{Subject: fmt.Sprintf("backup session to %s %s", s.in.Target, s.st.Phase), Body: msg, Severity: contract.SeverityError,
		Fields: map[string]string{"workflow_id": workflow.GetInfo(ctx).WorkflowExecution.ID, "target": s.in.Target}}
	if s.st.Cost != "" {
		ev.Body += "\ncost: " + s.st.Cost
	}
	_ = workflow.ExecuteActivity(s.opts(ctx, time.Minute, 0, 3), contract.Notify, ev).Get(ctx, nil)
}
