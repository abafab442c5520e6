package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/zfsname"
)

// Registered names of the restore-side workflows.
const (
	RestoreName = "Restore"
	VerifyName  = "ArchiveVerify"
)

// Phases of Restore and ArchiveVerify.
const (
	PhasePlanned           = "planned"
	PhaseRequesting        = "requesting retrieval"
	PhaseWaitingRetrieval  = "waiting for retrieval"
	PhaseReceiving         = "receiving"
	PhaseVerifyingStreams  = "verifying streams"
	PhaseProblemsFound     = "problems found"
	restoreMaxStreamTries  = 20
	defaultRestoreHBTimout = streamHeartbeatTimeout
)

// RestoreWorkflowID names the restore of dataset into target.
func RestoreWorkflowID(dataset, target, targetDataset string) string {
	if target == "" {
		target = "local"
	}
	return "restore/" + dataset + "/" + target + ":" + targetDataset
}

// VerifyWorkflowID names an on-demand drill of dataset.
func VerifyWorkflowID(dataset string) string { return "archive-verify/" + dataset }

// PollInterval is how often a restore asks whether cold objects are
// readable yet: about a tenth of the tier's typical wait, so a finished
// retrieval is noticed soon and a 12-hour wait costs ~50 short polls.
func PollInterval(tier contract.RetrievalTier) time.Duration {
	switch tier {
	case contract.TierExpedited:
		return time.Minute
	case contract.TierBulk:
		return time.Hour
	}
	return 15 * time.Minute
}

// RestoreInput says what to restore where.
type RestoreInput struct {
	Dataset  string `json:"dataset"`            // the archived dataset
	Snapshot string `json:"snapshot,omitempty"` // "" = the newest archived
	// TargetDataset receives the chain (it must not exist yet), on Target
	// (a configured target, over SSH) or on the worker's host ("").
	TargetDataset string `json:"target_dataset"`
	Target        string `json:"target,omitempty"`
	// Identity is the key name of the private key in the restoring
	// worker's key source. Only the name travels.
	Identity string `json:"identity"`
	Tier     string `json:"tier"`
	Days     int    `json:"days"` // how long restored copies stay readable
	// PollInterval between retrieval polls (0: from the tier).
	PollInterval time.Duration `json:"poll_interval,omitempty"`
	// PlanOnly stops after planning (zcloud restore plan).
	PlanOnly         bool          `json:"plan_only,omitempty"`
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// RestoreStatus answers Restore's status query and is its result.
type RestoreStatus struct {
	Phase         string                `json:"phase"`
	Dataset       string                `json:"dataset"`
	TargetDataset string                `json:"target_dataset"`
	Target        string                `json:"target,omitempty"`
	Tier          string                `json:"tier"`
	Plan          *contract.RestorePlan `json:"plan,omitempty"`
	RetrievalWait
	Current  string                   `json:"current,omitempty"` // stream being received
	Received []contract.ReceiveReport `json:"received,omitempty"`
	Error    string                   `json:"error,omitempty"`
}

// Restore recreates Dataset@Snapshot from the archive alone: plan the chain
// from the manifest in the store (read with the operator's private key),
// price it per tier, request retrieval of every object, wait durably
// (timers between short polls: hours in production), then receive the
// streams in order, each downloaded, verified part by part and decrypted
// before zfs receive sees a byte. A crash anywhere resumes at the next
// stream the target lacks.
func Restore(ctx workflow.Context, in RestoreInput) (RestoreStatus, error) {
	if err := in.fields.refuse(RestoreName, floor{"heartbeat_timeout", in.HeartbeatTimeout}, floor{"poll_interval", in.PollInterval}); err != nil {
		return RestoreStatus{}, err
	}
	st := RestoreStatus{Phase: PhasePlanning, Dataset: in.Dataset, TargetDataset: in.TargetDataset, Target: in.Target, Tier: in.Tier}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (RestoreStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	fail := func(step string, err error) error { return failStepVersioned(ctx, &st.Phase, &st.Error, step, err) }
	ds, err := zfsname.ParseDataset(in.Dataset)
	if err != nil {
		return st, fail("input", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
	}
	var target zfsname.Dataset
	if !in.PlanOnly {
		if target, err = zfsname.ParseDataset(in.TargetDataset); err != nil {
			return st, fail("input", temporal.NewNonRetryableApplicationError("target dataset: "+err.Error(), contract.ErrTypeInvalidName, nil))
		}
	}
	if in.Snapshot != "" {
		if _, err := ds.Snapshot(in.Snapshot); err != nil {
			return st, fail("input", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
		}
	}
	tier := contract.RetrievalTier(in.Tier)
	if tier == "" {
		tier = contract.TierStandard
		st.Tier = string(tier)
	}
	days := max(in.Days, 1)
	quick := workflow.WithActivityOptions(ctx, quickActivity)

	var plan contract.RestorePlan
	preq := contract.RestorePlanRequest{Dataset: ds, Snapshot: in.Snapshot, Identity: in.Identity, Tier: tier, Days: days, TargetDataset: target, Target: in.Target}
	if err := workflow.ExecuteActivity(quick, contract.PlanArchiveRestore, preq).Get(ctx, &plan); err != nil {
		return st, fail("plan", err)
	}
	st.Plan = &plan
	if in.PlanOnly {
		st.Phase = PhasePlanned
		return st, nil
	}
	var keys []string
	for _, s := range plan.Chain {
		keys = append(keys, s.Key)
	}
	if plan.NeedsRestore {
		if err := retrieve(ctx, &st.Phase, &st.RetrievalWait, keys, tier, days, in.PollInterval); err != nil {
			return st, fail("retrieval", err)
		}
	}

	st.Phase = PhaseReceiving
	long := streamActivity(ctx, in.HeartbeatTimeout, defaultRestoreHBTimout, restoreMaxStreamTries)
	for i, s := range plan.Chain {
		st.Current = fmt.Sprintf("%d/%d %s (@%s)", i+1, len(plan.Chain), s.ID, s.To.Name)
		req := contract.ReceiveRequest{Dataset: ds, Cycle: s.Cycle, StreamID: s.ID, Identity: in.Identity, TargetDataset: target, Target: in.Target}
		var rep contract.ReceiveReport
		if err := workflow.ExecuteActivity(long, contract.ReceiveArchiveStream, req).Get(ctx, &rep); err != nil {
			return st, fail(fmt.Sprintf("receive %s (@%s)", s.ID, s.To.Name), err)
		}
		st.Received = append(st.Received, rep)
	}
	st.Current = ""
	st.Phase = PhaseDone
	return st, nil
}

// RetrievalWait is the state of a durable wait for cold objects, part of
// Restore's and ArchiveVerify's status.
type RetrievalWait struct {
	Retrieval    *contract.Retrieval `json:"retrieval,omitempty"`
	Polls        int                 `json:"polls"`
	WaitingSince time.Time           `json:"waiting_since,omitzero"`
	NextPoll     time.Time           `json:"next_poll,omitzero"`
	// PollFailures counts status polls that failed for a reason retrying
	// can fix (network, S3 trouble); the wait goes on through them.
	PollFailures  int    `json:"poll_failures,omitempty"`
	LastPollError string `json:"last_poll_error,omitempty"`
}

// retrievalPollRetries: from this version a failed status poll no longer
// ends a wait that may have lasted hours; only a permanent error does.
const retrievalPollRetries = "retrieval-poll-retries"

// retrieve requests every object and waits, on durable timers, until all
// are readable. A poll that fails for a retryable reason is tried again
// after a backoff (from a minute, doubling, up to the poll interval) for as
// long as the wait lasts; a permanent error (object missing, access denied)
// or a cancellation ends it. w is the caller's status; poll 0 is the
// tier's PollInterval.
func retrieve(ctx workflow.Context, phase *string, w *RetrievalWait,
	keys []string, tier contract.RetrievalTier, days int, poll time.Duration) error {
	if poll <= 0 {
		poll = PollInterval(tier)
	}
	quick := workflow.WithActivityOptions(ctx, quickActivity)
	*phase = PhaseRequesting
	req := contract.RetrievalRequest{Keys: keys, Tier: tier, Days: days}
	if err := workflow.ExecuteActivity(quick, contract.RequestArchiveRetrieval, req).Get(ctx, nil); err != nil {
		return err
	}
	*phase = PhaseWaitingRetrieval
	w.WaitingSince = workflow.Now(ctx)
	survive := workflow.GetVersion(ctx, retrievalPollRetries, workflow.DefaultVersion, 1) == 1
	firstBackoff := min(poll, time.Minute)
	backoff := firstBackoff
	for {
		var got contract.Retrieval
		if err := workflow.ExecuteActivity(quick, contract.ArchiveRetrievalStatus, req).Get(ctx, &got); err != nil {
			if !survive || isPermanent(err) || temporal.IsCanceledError(err) || ctx.Err() != nil {
				return err
			}
			w.PollFailures++
			w.LastPollError, _ = rootCause(err)
			w.NextPoll = workflow.Now(ctx).Add(backoff)
			if err := workflow.Sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = min(2*backoff, max(poll, firstBackoff))
			continue
		}
		backoff = firstBackoff
		w.Polls++
		w.Retrieval = &got
		if got.Ready == got.Total {
			w.NextPoll = time.Time{}
			return nil
		}
		w.NextPoll = workflow.Now(ctx).Add(poll)
		if err := workflow.Sleep(ctx, poll); err != nil {
			return err
		}
	}
}

// isPermanent: an activity error that retrying cannot fix.
func isPermanent(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.NonRetryable()
}

// VerifyInput is a restore drill of one dataset's archive.
type VerifyInput struct {
	Dataset string `json:"dataset"`
	// Identity reads the manifest ("" = the host identity).
	Identity         string        `json:"identity,omitempty"`
	Tier             string        `json:"tier"` // retrieval tier for cold objects
	Days             int           `json:"days"`
	PollInterval     time.Duration `json:"poll_interval,omitempty"`
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// Deep also decrypts with Identity (then the archive's private key, by
	// name) and zfs-receives the newest chain into Scratch on the worker's
	// host, checks it and destroys it.
	Deep    bool   `json:"deep,omitempty"`
	Scratch string `json:"scratch,omitempty"` // its last component starts with zcloud-drill

	fields inputFields // fields the input has that the type lacks (input.go)
}

// VerifyStatus answers ArchiveVerify's status query and is its result.
type VerifyStatus struct {
	Phase   string `json:"phase"`
	Dataset string `json:"dataset"`
	Streams int    `json:"streams"`
	Checked int    `json:"checked"`
	Bytes   int64  `json:"bytes"`
	RetrievalWait
	Findings []contract.Finding    `json:"findings,omitempty"`
	Drill    *contract.DrillReport `json:"drill,omitempty"` // a deep drill's report
	Error    string                `json:"error,omitempty"`
}

// ArchiveVerify re-reads every archived object of a dataset and checks it
// against the manifest (HEAD, then every part's SHA-256 and the whole
// object's), restoring cold objects first. Every missing or corrupt object
// is reported; any finding fails the drill so it is noticed.
func ArchiveVerify(ctx workflow.Context, in VerifyInput) (VerifyStatus, error) {
	if err := in.fields.refuse(VerifyName, floor{"heartbeat_timeout", in.HeartbeatTimeout}, floor{"poll_interval", in.PollInterval}); err != nil {
		return VerifyStatus{}, err
	}
	st := VerifyStatus{Phase: PhasePlanning, Dataset: in.Dataset}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (VerifyStatus, error) { return st, nil }); err != nil {
		return st, err
	}
	fail := func(step string, err error) error { return failStepVersioned(ctx, &st.Phase, &st.Error, step, err) }
	ds, err := zfsname.ParseDataset(in.Dataset)
	if err != nil {
		return st, fail("input", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
	}
	tier := contract.RetrievalTier(in.Tier)
	if tier == "" {
		tier = contract.TierBulk
	}
	quick := workflow.WithActivityOptions(ctx, quickActivity)
	var plan contract.VerifyPlan
	keyNote := ""
	if in.Identity != "" {
		keyNote = fmt.Sprintf(" with private key %q", in.Identity)
	}
	if err := workflow.ExecuteActivity(quick, contract.PlanArchiveVerify, contract.VerifyPlanRequest{Dataset: ds, Identity: in.Identity, Tier: tier, Days: max(in.Days, 1)}).Get(ctx, &plan); err != nil {
		return st, fail("plan"+keyNote, err)
	}
	st.Streams = len(plan.Streams)
	st.Findings = append(st.Findings, plan.HeadProblems...)
	bad := map[string]bool{}
	for _, f := range plan.HeadProblems {
		bad[f.Cycle+"/"+f.StreamID] = true
	}
	var todo []contract.StreamInfo
	var keys []string
	for _, s := range plan.Streams {
		if !bad[s.Cycle+"/"+s.ID] {
			todo = append(todo, s)
			keys = append(keys, s.Key)
		}
	}
	if plan.NeedsRestore && len(keys) > 0 {
		if err := retrieve(ctx, &st.Phase, &st.RetrievalWait, keys, tier, max(in.Days, 1), in.PollInterval); err != nil {
			return st, fail("retrieval", err)
		}
	}
	st.Phase = PhaseVerifyingStreams
	long := streamActivity(ctx, in.HeartbeatTimeout, defaultRestoreHBTimout, restoreMaxStreamTries)
	for _, s := range todo {
		var rep contract.VerifyStreamReport
		req := contract.VerifyStreamRequest{Dataset: ds, Cycle: s.Cycle, StreamID: s.ID, Identity: in.Identity}
		if err := workflow.ExecuteActivity(long, contract.VerifyArchiveStream, req).Get(ctx, &rep); err != nil {
			return st, fail("verify "+s.ID, err)
		}
		st.Checked++
		st.Bytes += rep.Bytes
		if rep.Finding != nil {
			st.Findings = append(st.Findings, *rep.Finding)
		}
	}
	if len(st.Findings) > 0 {
		var lines []string
		for _, f := range st.Findings {
			lines = append(lines, fmt.Sprintf("%s %s (stream %s): %s", f.Kind, f.Key, f.StreamID, f.Detail))
		}
		msg := fmt.Sprintf("%d of %d archived streams of %s failed verification: %s", len(st.Findings), st.Streams, in.Dataset, strings.Join(lines, "; "))
		err := fail("verify", temporal.NewNonRetryableApplicationError(msg, contract.ErrTypeCorrupt, nil))
		st.Phase = PhaseProblemsFound
		return st, err
	}
	if in.Deep {
		if err := deepDrill(ctx, &st, in, ds, tier, long); err != nil {
			return st, fail("deep drill"+keyNote, err)
		}
	}
	st.Phase = PhaseDone
	return st, nil
}

// PhaseDeepDrill: receiving the chain into the drill's scratch dataset.
const PhaseDeepDrill = "deep drill: receiving into scratch"

// deepDrill receives the newest chain into the scratch dataset (download,
// verify, decrypt with the private key named by in.Identity, zfs receive),
// checks the snapshots, destroys the scratch and keeps the report in the
// store, failed or not. The objects were made readable by the caller.
func deepDrill(ctx workflow.Context, st *VerifyStatus, in VerifyInput, ds zfsname.Dataset, tier contract.RetrievalTier, long workflow.Context) error {
	scratch, err := zfsname.ParseDataset(in.Scratch)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("drill scratch: "+err.Error(), contract.ErrTypeInvalidName, nil)
	}
	st.Phase = PhaseDeepDrill
	quick := workflow.WithActivityOptions(ctx, quickActivity)
	sreq := contract.DrillScratchRequest{Scratch: scratch}
	if err := workflow.ExecuteActivity(quick, contract.ClearDrillScratch, sreq).Get(ctx, nil); err != nil {
		return err
	}
	rep := contract.DrillReport{Dataset: in.Dataset, Scratch: in.Scratch, Identity: in.Identity, Started: workflow.Now(ctx)}
	err = func() error {
		var plan contract.RestorePlan
		preq := contract.RestorePlanRequest{Dataset: ds, Identity: in.Identity, Tier: tier, TargetDataset: scratch}
		if err := workflow.ExecuteActivity(quick, contract.PlanArchiveRestore, preq).Get(ctx, &plan); err != nil {
			return err
		}
		for _, s := range plan.Chain {
			rep.Chain = append(rep.Chain, s.ID+"@"+s.To.Name)
			sreq.Expect = append(sreq.Expect, s.To.GUID)
		}
		for _, s := range plan.Chain {
			req := contract.ReceiveRequest{Dataset: ds, Cycle: s.Cycle, StreamID: s.ID, Identity: in.Identity, TargetDataset: scratch}
			var r contract.ReceiveReport
			if err := workflow.ExecuteActivity(long, contract.ReceiveArchiveStream, req).Get(ctx, &r); err != nil {
				return fmt.Errorf("stream %s (@%s): %w", s.ID, s.To.Name, err)
			}
			rep.Bytes += r.Bytes
		}
		return nil
	}()
	rep.Seconds = workflow.Now(ctx).Sub(rep.Started).Seconds()
	rep.Passed, rep.Result = err == nil, "passed"
	if err != nil {
		msg, _ := rootCause(err)
		rep.Result = msg
	}
	// Clean up and report even when cancelled or failed.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	sreq.Report = &rep
	var final contract.DrillReport
	ferr := workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, quickActivity), contract.FinishDeepDrill, sreq).Get(dctx, &final)
	if ferr == nil {
		rep = final
	}
	st.Drill = &rep
	switch {
	case err != nil:
		return err
	case ferr != nil:
		return ferr
	case !rep.Passed:
		return temporal.NewNonRetryableApplicationError(rep.Result, contract.ErrTypeBrokenChain, nil)
	}
	return nil
}
