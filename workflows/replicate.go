package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/retention"
	"zcloud/zfsname"
)

// ReplicateName is the registered name of Replicate.
const ReplicateName = "Replicate"

// ReplicateInput is one dataset to one target.
type ReplicateInput struct {
	// Names are plain strings in the payload and validated by the workflow,
	// so a bad name fails the workflow with a clear error instead of
	// failing to decode.
	Source        string `json:"source"`
	Target        string `json:"target"` // a target name from the config
	TargetDataset string `json:"target_dataset"`
	Raw           bool   `json:"raw"`
	// AllowPlaintext: a natively encrypted source may be sent decrypted
	// (allow_plaintext_on_target); otherwise it is sent raw.
	AllowPlaintext bool `json:"allow_plaintext,omitempty"`
	// SnapshotPrefix names the snapshot taken for this run (default "zcloud").
	SnapshotPrefix string `json:"snapshot_prefix,omitempty"`
	// HeartbeatTimeout for the send (default 12s; the SDK reports progress
	// to the server every 0.8 of it); tests shorten it.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// TargetInstance is the instance of an ec2 target a Session launched
	// (or started). The worker finds its address and host key itself
	// (contract.TargetAddr); a static target has none.
	TargetInstance string `json:"target_instance,omitempty"`
	// TargetHost and TargetHostKey are refused by the worker unless they
	// are exactly what it found itself: an address or a host key never
	// comes from a workflow input (docs/security.md). Kept so old
	// histories decode.
	TargetHost    string `json:"target_host,omitempty"`
	TargetHostKey string `json:"target_host_key,omitempty"`
	// Snapshot, when set, is the snapshot name (after '@') to take or, if
	// it exists, reuse: a Session's replacement instance continues the
	// same snapshot after a spot interruption.
	Snapshot string `json:"snapshot,omitempty"`

	fields inputFields // fields the input has that the type lacks (input.go)
}

// ReplicateResult says what happened.
type ReplicateResult struct {
	Snapshot string               `json:"snapshot"`
	Target   contract.TargetCheck `json:"target"`
	Send     contract.SendReport  `json:"send"`
	Seconds  float64              `json:"seconds"`
}

// ReplicateStatus answers the "status" query.
type ReplicateStatus struct {
	Phase    string `json:"phase"`
	Snapshot string `json:"snapshot,omitempty"`
	// Mode is what the target stores after the send: raw, plaintext or plain
	// (activities.SendReport.Mode).
	Mode  string `json:"mode,omitempty"`
	Error string `json:"error,omitempty"`
}

// ReplicateWorkflowID names the replication of source to targetDataset on
// target: each of the three makes the job, so two target datasets of one
// source never share an id.
func ReplicateWorkflowID(source, target, targetDataset string) string {
	return "replicate/" + source + "/" + target + ":" + targetDataset
}

// StatusQuery is the query name every zcloud workflow answers.
const StatusQuery = "status"

// Replicate takes a snapshot of Source and brings TargetDataset on Target up
// to it: a full stream the first time, incremental after, resuming where
// ZFS allows. The new snapshot is held on the source for this target (it is
// the next incremental base) and the previous base released.
func Replicate(ctx workflow.Context, in ReplicateInput) (ReplicateResult, error) {
	if err := in.fields.refuse(ReplicateName, floor{"heartbeat_timeout", in.HeartbeatTimeout}); err != nil {
		return ReplicateResult{}, err
	}
	begin := workflow.Now(ctx)
	status := ReplicateStatus{Phase: "starting"}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, func() (ReplicateStatus, error) { return status, nil }); err != nil {
		return ReplicateResult{}, err
	}
	if in.Target == "" {
		return ReplicateResult{}, temporal.NewNonRetryableApplicationError("a target is required", contract.ErrTypeConfig, nil)
	}
	if _, err := zfsname.ParseHoldTag(HoldTag(in.Target)); err != nil {
		// Refused before anything is sent: the hold after the send would
		// fail and leave the next incremental base unprotected.
		return ReplicateResult{}, failStep(&status.Phase, &status.Error, "target", temporal.NewNonRetryableApplicationError("target name "+err.Error(), contract.ErrTypeInvalidName, nil))
	}
	source, err := zfsname.ParseDataset(in.Source)
	if err != nil {
		return ReplicateResult{}, failStep(&status.Phase, &status.Error, "source", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, err))
	}
	targetDS, err := zfsname.ParseDataset(in.TargetDataset)
	if err != nil {
		return ReplicateResult{}, failStep(&status.Phase, &status.Error, "target dataset", temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, err))
	}
	prefix := in.SnapshotPrefix
	if prefix == "" {
		prefix = retention.DefaultPrefix
	}
	// The snapshot name (fixed length) must fit ZFS's 255 bytes on both
	// sides: refused before anything runs, not retried at zfs receive.
	probe := in.Snapshot
	if probe == "" {
		probe = retention.SnapshotName(prefix, begin)
	}
	for _, d := range []struct {
		what string
		ds   zfsname.Dataset
	}{{"source", source}, {"target dataset", targetDS}} {
		if _, err := d.ds.Snapshot(probe); err != nil {
			return ReplicateResult{}, failStep(&status.Phase, &status.Error, d.what, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, nil))
		}
	}
	var res ReplicateResult

	status.Phase = "checking target"
	quick := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 2 * time.Second, MaximumAttempts: 3},
	})
	at := contract.TargetAddr{Instance: in.TargetInstance, Host: in.TargetHost, HostKey: in.TargetHostKey}
	var check workflow.Future
	if workflow.GetVersion(ctx, "authorize-replication", workflow.DefaultVersion, 1) >= 1 {
		// The worker checks the whole request against its config before
		// it connects anywhere, so a forged input fails here.
		check = workflow.ExecuteActivity(quick, contract.CheckTargetAt, contract.CheckRequest{Target: in.Target, At: at,
			Source: source.String(), TargetDataset: targetDS.String(), Raw: in.Raw, AllowPlaintext: in.AllowPlaintext})
	} else if at == (contract.TargetAddr{}) {
		check = workflow.ExecuteActivity(quick, contract.CheckTarget, in.Target)
	} else {
		check = workflow.ExecuteActivity(quick, contract.CheckTargetAt, contract.CheckRequest{Target: in.Target, At: at})
	}
	if err := check.Get(ctx, &res.Target); err != nil {
		return res, failStep(&status.Phase, &status.Error, "check target", err)
	}

	status.Phase = "snapshot"
	snapName := in.Snapshot
	if snapName == "" {
		snapName = retention.SnapshotName(prefix, workflow.Now(ctx))
	}
	snap, err := source.Snapshot(snapName)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrTypeInvalidName, err)
	}
	status.Snapshot, res.Snapshot = snap.String(), snap.String()
	if err := workflow.ExecuteActivity(quick, contract.TakeSnapshot, contract.SnapshotRequest{Snapshot: snap}).Get(ctx, nil); err != nil {
		return res, failStep(&status.Phase, &status.Error, "snapshot", err)
	}

	status.Phase = "send"
	hb := in.HeartbeatTimeout
	if hb == 0 {
		hb = streamHeartbeatTimeout
	}
	long := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 48 * time.Hour,
		HeartbeatTimeout:    hb,
		// A cancelled send ends when its processes are gone on both ends,
		// so a Session can export the pool under it right after.
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, MaximumAttempts: 20},
	})
	req := contract.SendRequest{Source: source, Snapshot: snap, Target: in.Target, TargetDataset: targetDS, Raw: in.Raw,
		AllowPlaintext: in.AllowPlaintext, At: at}
	if err := workflow.ExecuteActivity(long, contract.SendSnapshots, req).Get(ctx, &res.Send); err != nil {
		return res, failStep(&status.Phase, &status.Error, "send", err)
	}
	status.Mode = res.Send.Mode

	status.Phase = "hold"
	hold := contract.HoldRequest{Snapshot: snap, Tag: HoldTag(in.Target)}
	if err := workflow.ExecuteActivity(quick, contract.HoldBase, hold).Get(ctx, nil); err != nil {
		return res, failStep(&status.Phase, &status.Error, "hold", err)
	}
	status.Phase = "done"
	res.Seconds = workflow.Now(ctx).Sub(begin).Seconds()
	return res, nil
}

// HoldTag is the hold that keeps target's next incremental base on the source.
func HoldTag(target string) string { return "zcloud-" + target }
