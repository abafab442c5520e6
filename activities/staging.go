package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"go.temporal.io/sdk/activity"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/keys"
	"zcloud/staging"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// The staging contract (package contract), named here for brevity.
type (
	StagingPlanRequest     = contract.StagingPlanRequest
	StagingPlan            = contract.StagingPlan
	StageRequest           = contract.StageRequest
	StagingSnapshotRequest = contract.StagingSnapshotRequest
	StagingReport          = contract.StagingReport
)

const (
	StagingGatePoint   = contract.StagingGatePoint
	StagingHoldTag     = contract.StagingHoldTag
	StagingFull        = contract.StagingFull
	StagingIncremental = contract.StagingIncremental
	StagingSkip        = contract.StagingSkip
)

// stagingReport converts the engine's report to the contract's.
func stagingReport(r staging.Report) StagingReport {
	probs := func(ps []staging.Problem) []contract.StagingProblem {
		var out []contract.StagingProblem
		for _, p := range ps {
			out = append(out, contract.StagingProblem{Path: p.Path, Reason: p.Reason})
		}
		return out
	}
	return StagingReport{Snapshot: r.Snapshot, Already: r.Already, Files: r.Files, Symlinks: r.Symlinks, Dirs: r.Dirs,
		Removed: r.Removed, Moved: r.Moved, Bytes: r.Bytes, Skipped: probs(r.Skipped), Failed: probs(r.Failed)}
}

// mountpoint is where d is mounted; staging needs a mounted filesystem.
func (a *Activities) mountpoint(ctx context.Context, z zfsexec.ZFS, d zfsname.Dataset) (string, error) {
	props, err := z.Get(ctx, []zfsname.PropName{"mountpoint", "mounted"}, d)
	if err != nil {
		return "", classify(err)
	}
	var mp, mounted string
	for _, p := range props {
		switch p.Property {
		case "mountpoint":
			mp = p.Value
		case "mounted":
			mounted = p.Value
		}
	}
	if !strings.HasPrefix(mp, "/") || mounted != "yes" {
		return "", permanent(contract.ErrTypeConfig, fmt.Errorf("staging: %s is not mounted (mountpoint %q, mounted %q): staging reads and writes files", d, mp, mounted))
	}
	return mp, nil
}

// stagingNames is the job's name cipher (nil: names kept), its key read
// from the worker's key source.
func (a *Activities) stagingNames(ctx context.Context, job config.Staging) (*staging.NameCipher, error) {
	if job.Names != "encrypt" {
		return nil, nil
	}
	b, err := a.Keys.Get(ctx, job.NamesKey)
	if errors.Is(err, keys.ErrNotFound) {
		return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("staging names key %q is not in this worker's key source (keys.dir / keys.command): %w", job.NamesKey, err))
	}
	if err != nil {
		return nil, permanent(contract.ErrTypeConfig, err)
	}
	key, err := staging.ParseNamesKey(b)
	clear(b)
	if err != nil {
		return nil, permanent(contract.ErrTypeKeyIncorrect, fmt.Errorf("key %q: %w", job.NamesKey, err))
	}
	return staging.NewNameCipher(key)
}

// stagingJob is source's configured job.
func (a *Activities) stagingJob(source string) (config.Staging, error) {
	job, ok := a.Config.StagingFor(source)
	if !ok {
		return job, permanent(contract.ErrTypeConfig, fmt.Errorf("staging: %s has no staging: entry in the config", source))
	}
	return job, nil
}

// PlanStaging decides the next run: a full run when the staging copy holds
// nothing (or its base snapshot is gone), an incremental from the staged
// snapshot to the source's newest, nothing when that is already staged.
func (a *Activities) PlanStaging(ctx context.Context, req StagingPlanRequest) (StagingPlan, error) {
	if err := a.allowStaging(req.Source.String(), req.Dataset.String()); err != nil {
		return StagingPlan{}, err
	}
	z := zfsexec.ZFS{R: a.Local}
	snaps, err := z.ListSnapshots(ctx, req.Source)
	if err != nil {
		return StagingPlan{}, classify(err)
	}
	if len(snaps) == 0 {
		return StagingPlan{}, permanent(contract.ErrTypeNotFound, fmt.Errorf("staging: %s has no snapshot to stage", req.Source))
	}
	newest := snaps[len(snaps)-1].Snapshot.Name()
	mp, err := a.mountpoint(ctx, z, req.Dataset)
	if err != nil {
		return StagingPlan{}, err
	}
	st, err := staging.ReadState(mp)
	if err != nil {
		return StagingPlan{}, err
	}
	job, err := a.stagingJob(req.Source.String())
	if err != nil {
		return StagingPlan{}, err
	}
	names, err := a.stagingNames(ctx, job)
	if err != nil {
		return StagingPlan{}, err
	}
	wantNames := ""
	if names != nil {
		wantNames = names.ID()
	}
	if st.Snapshot != "" && st.Names != wantNames {
		return StagingPlan{Action: StagingFull, To: newest,
			Note: fmt.Sprintf("the staging copy's names were staged with another names setting or key (names: %s now): restaging everything", job.Names)}, nil
	}
	switch {
	case st.Snapshot == newest:
		return StagingPlan{Action: StagingSkip, From: st.Snapshot, To: newest, Note: "the newest snapshot is staged"}, nil
	case st.Snapshot == "":
		return StagingPlan{Action: StagingFull, To: newest}, nil
	}
	for _, s := range snaps {
		if s.Snapshot.Name() == st.Snapshot {
			return StagingPlan{Action: StagingIncremental, From: st.Snapshot, To: newest}, nil
		}
	}
	return StagingPlan{Action: StagingFull, To: newest,
		Note: fmt.Sprintf("the staged snapshot %s is gone from %s (was its hold released?): restaging everything", st.Snapshot, req.Source)}, nil
}

// StageSnapshot runs the staging engine: every file of req.To (full), or
// the zfs diff From..To (incremental), encrypted into the staging dataset
// to the configured recipients. A retry after a crash resumes from the
// staging copy's journal. Entries it could not read fail the attempt with
// their list (retried; nothing is lost).
func (a *Activities) StageSnapshot(ctx context.Context, req StageRequest) (StagingReport, error) {
	if err := a.allowStaging(req.Source.String(), req.Dataset.String()); err != nil {
		return StagingReport{}, err
	}
	job, err := a.stagingJob(req.Source.String())
	if err != nil {
		return StagingReport{}, err
	}
	names, err := a.stagingNames(ctx, job)
	if err != nil {
		return StagingReport{}, err
	}
	var rcpts []age.Recipient
	for _, r := range job.Recipients {
		got, err := age.ParseRecipients(strings.NewReader(r))
		if err != nil {
			return StagingReport{}, permanent(contract.ErrTypeConfig, fmt.Errorf("staging recipients: %w", err))
		}
		rcpts = append(rcpts, got...)
	}
	z := zfsexec.ZFS{R: a.Local}
	srcMount, err := a.mountpoint(ctx, z, req.Source)
	if err != nil {
		return StagingReport{}, err
	}
	dstMount, err := a.mountpoint(ctx, z, req.Dataset)
	if err != nil {
		return StagingReport{}, err
	}
	to, err := req.Source.Snapshot(req.To)
	if err != nil {
		return StagingReport{}, permanent(contract.ErrTypeInvalidName, err)
	}
	snapDir := filepath.Join(srcMount, ".zfs", "snapshot", req.To)
	if _, err := os.Stat(snapDir); err != nil {
		return StagingReport{}, fmt.Errorf("staging: snapshot %s is not readable at %s: %w", to, snapDir, err)
	}
	var read atomic.Int64
	s := &staging.Stager{Source: snapDir, Dir: dstMount, Options: staging.Options{
		Recipients: rcpts, Parallel: job.Parallel, Read: &read, Names: names,
		// The staging dataset is ZFS, whose ordered transaction groups make
		// the rename-into-place safe without an fsync per file.
		NoFsync: true,
		AfterFile: func(n int) error {
			// Test-only: acceptance tests kill the worker here.
			return a.Gate.Pass(ctx, StagingGatePoint, int64(n))
		},
	}}
	if activity.IsActivity(ctx) { // not under `zcloud staging run --local`
		stop := a.heartbeatBytes(ctx, "staging", req.Action+" "+req.To, 0, &read, 2*time.Second)
		defer stop()
	}
	var rep staging.Report
	switch req.Action {
	case StagingFull:
		rep, err = s.Full(ctx, req.To)
	case StagingIncremental:
		from, perr := req.Source.Snapshot(req.From)
		if perr != nil {
			return StagingReport{}, permanent(contract.ErrTypeInvalidName, perr)
		}
		cs, derr := z.Diff(ctx, from, to)
		if derr != nil {
			return StagingReport{}, classify(derr)
		}
		changes, cerr := staging.FromDiff(srcMount, cs)
		if cerr != nil {
			return StagingReport{}, permanent(contract.ErrTypeUnsupported, cerr)
		}
		rep, err = s.Incremental(ctx, req.From, req.To, changes)
	default:
		return StagingReport{}, permanent(contract.ErrTypeConfig, fmt.Errorf("staging: unknown action %q", req.Action))
	}
	if errors.Is(err, staging.ErrNotBase) || errors.Is(err, staging.ErrNamesChanged) {
		return stagingReport(rep), permanent(contract.ErrTypeConfig, err)
	}
	return stagingReport(rep), err
}

// SnapshotStaging snapshots the staging dataset (named after the staged
// source snapshot), so the copy replicates and archives like any dataset.
// An existing snapshot of that name is fine (a retried activity).
func (a *Activities) SnapshotStaging(ctx context.Context, req StagingSnapshotRequest) error {
	if err := a.allowStagingSnapshot(req.Snapshot.Dataset().String()); err != nil {
		return err
	}
	z := zfsexec.ZFS{R: a.Local}
	err := z.Snapshot(ctx, false, zfsexec.Props{}, req.Snapshot)
	if err != nil && !errors.Is(err, zfsexec.ErrExists) {
		return classify(err)
	}
	return nil
}

// RunStagingHere (a function: every Activities method is registered as an
// activity) runs the Staging workflow's steps in this process, without
// Temporal (`zcloud staging run --local`): plan, stage, snapshot the
// staging dataset, hold the staged snapshot. Each step is the activity the
// workflow runs, so a rerun after a crash resumes the same way.
func RunStagingHere(ctx context.Context, a *Activities, source, dataset string) (StagingPlan, *StagingReport, error) {
	src, err := zfsname.ParseDataset(source)
	if err != nil {
		return StagingPlan{}, nil, err
	}
	dst, err := zfsname.ParseDataset(dataset)
	if err != nil {
		return StagingPlan{}, nil, err
	}
	plan, err := a.PlanStaging(ctx, StagingPlanRequest{Source: src, Dataset: dst})
	if err != nil {
		return plan, nil, err
	}
	var rep *StagingReport
	if plan.Action != StagingSkip {
		r, err := a.StageSnapshot(ctx, StageRequest{Source: src, Dataset: dst, Action: plan.Action, From: plan.From, To: plan.To})
		if err != nil {
			return plan, &r, err
		}
		rep = &r
	}
	snap, err := dst.Snapshot(plan.To)
	if err != nil {
		return plan, rep, err
	}
	if err := a.SnapshotStaging(ctx, StagingSnapshotRequest{Snapshot: snap}); err != nil {
		return plan, rep, err
	}
	base, err := src.Snapshot(plan.To)
	if err != nil {
		return plan, rep, err
	}
	return plan, rep, a.HoldBase(ctx, contract.HoldRequest{Snapshot: base, Tag: StagingHoldTag})
}
