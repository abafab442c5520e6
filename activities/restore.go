package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"zcloud/archive"
	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/contract"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// PlanArchiveRestore loads the manifest from the store with the operator's
// private key (read here from the key source, by name) and plans the chain
// to the snapshot: the full of the newest cycle holding it and every
// incremental up to it, priced per retrieval tier.
func (a *Activities) PlanArchiveRestore(ctx context.Context, req contract.RestorePlanRequest) (contract.RestorePlan, error) {
	p := contract.RestorePlan{Dataset: req.Dataset.String()}
	if err := a.allowIdentity(req.Identity); err != nil {
		return p, err
	}
	if err := a.allowRetrieval(req.Tier, req.Days); err != nil {
		return p, err
	}
	_, _, m, err := a.openManifest(ctx, req.Dataset, req.Identity, false)
	if err != nil {
		return p, err
	}
	p.FromPrevious = m.FromPrevious
	if !req.TargetDataset.IsZero() {
		if err := a.checkRestoreTarget(ctx, req.Target, req.TargetDataset); err != nil {
			return p, err
		}
	}
	chain, err := archive.PlanRestore(m, req.Snapshot)
	if errors.Is(err, archive.ErrNoSnapshot) {
		return p, permanent(contract.ErrTypeNotFound, err)
	}
	if err != nil {
		return p, archiveErr(err)
	}
	for _, s := range chain {
		p.Chain = append(p.Chain, streamInfo(s))
		p.PlainBytes += s.PlainSize
		p.StoredBytes += s.StoredSize
		p.ParityBytes += s.ParityBytes()
		if s.Class.NeedsRestore() || a.Config.Archive.Store.Kind == "vault" {
			p.NeedsRestore = true
		}
	}
	p.Snapshot = chain[len(chain)-1].To.Name
	p.Estimates = archive.EstimateTiers(chain, a.estimateClass())
	if p.Chosen, err = archive.Estimate(chain, a.estimateClass(), req.Tier); err != nil {
		return p, permanent(contract.ErrTypeConfig, fmt.Errorf("tier %s: %v", req.Tier, err))
	}
	return p, nil
}

// RequestArchiveRetrieval asks the store to restore every object (S3
// RestoreObject, vault archive-retrieval jobs; nothing for readable
// classes). Idempotent: requests in progress are not repeated.
func (a *Activities) RequestArchiveRetrieval(ctx context.Context, req contract.RetrievalRequest) error {
	if err := a.allowRetrieval(req.Tier, req.Days); err != nil {
		return err
	}
	if err := a.allowStoreKeys(req.Keys); err != nil {
		return err
	}
	st, err := a.archiveStore(ctx)
	if err != nil {
		return err
	}
	for _, sk := range req.Keys {
		keys, err := archive.StreamObjects(ctx, st, sk)
		if err != nil {
			return archiveErr(fmt.Errorf("request retrieval of %s: %w", sk, err))
		}
		for _, k := range keys {
			if err := st.RequestRestore(ctx, k, req.Tier, req.Days); err != nil {
				return archiveErr(fmt.Errorf("request retrieval of %s: %w", k, err))
			}
		}
	}
	return nil
}

// ArchiveRetrievalStatus is one short poll of the objects' restore status;
// workflows call it between durable timers (never a sleeping activity).
func (a *Activities) ArchiveRetrievalStatus(ctx context.Context, req contract.RetrievalRequest) (contract.Retrieval, error) {
	out := contract.Retrieval{Total: len(req.Keys)}
	if err := a.allowStoreKeys(req.Keys); err != nil {
		return out, err
	}
	st, err := a.archiveStore(ctx)
	if err != nil {
		return out, err
	}
	for _, sk := range req.Keys {
		keys, err := archive.StreamObjects(ctx, st, sk)
		if err != nil {
			return out, archiveErr(fmt.Errorf("restore status of %s: %w", sk, err))
		}
		ready := true
		for _, k := range keys {
			rs, err := st.RestoreStatus(ctx, k)
			if err != nil {
				return out, archiveErr(fmt.Errorf("restore status of %s: %w", k, err))
			}
			if !rs.Ready {
				ready = false
				if len(out.Pending) < 5 {
					out.Pending = append(out.Pending, k)
				}
			}
		}
		if ready {
			out.Ready++
		}
	}
	return out, nil
}

// ReceiveArchiveStream downloads one stream part by part, verifies each
// part's SHA-256 against the manifest before its bytes go further,
// decrypts with the private key (read from the key source) and pipes it
// into zfs receive, which starts only once verified bytes are in hand. A
// stream whose `to` snapshot the target already has (by GUID) is skipped,
// so a retry after any crash resumes at the next stream.
func (a *Activities) ReceiveArchiveStream(ctx context.Context, req contract.ReceiveRequest) (contract.ReceiveReport, error) {
	begin := time.Now()
	rep := contract.ReceiveReport{StreamID: req.StreamID, Attempt: activity.GetInfo(ctx).Attempt}
	if err := a.allowIdentity(req.Identity); err != nil {
		return rep, err
	}
	if req.Target != "" {
		if _, err := a.allowTarget(req.Target); err != nil {
			return rep, err
		}
	}
	st, ids, m, err := a.openManifest(ctx, req.Dataset, req.Identity, false)
	if err != nil {
		return rep, err
	}
	s, ok := findStream(m, req.Cycle, req.StreamID)
	if !ok {
		return rep, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("stream %s of cycle %s is not in the manifest of %s (deleted by rotation since the plan?)", req.StreamID, req.Cycle, req.Dataset))
	}
	rep.To = s.To.Name

	var r zfsexec.Runner = a.Local
	if req.Target != "" {
		_, sr, err := a.target(ctx, req.Target)
		if err != nil {
			return rep, err
		}
		defer sr.Close()
		r = sr
	}
	caps, err := a.capabilities(ctx, r)
	if err != nil {
		return rep, classify(err)
	}
	z := zfsexec.ZFS{R: r, Caps: caps}
	log := a.Log.With(zap.String("stream", s.ID), zap.String("target", r.Host()+":"+req.TargetDataset.String()))

	exists, err := z.Exists(ctx, req.TargetDataset)
	if err != nil {
		return rep, classify(err)
	}
	var have []zfsexec.SnapshotInfo
	if exists {
		if have, err = z.ListSnapshots(ctx, req.TargetDataset); err != nil {
			return rep, classify(err)
		}
		if _, ok := snapByGUID(have, s.To.GUID); ok {
			log.Info("target already has this stream's snapshot: skipped")
			rep.Skipped = true
			return rep, nil
		}
	}
	switch s.Kind {
	case archivetypes.Full:
		if exists && len(have) == 0 {
			if rep.Attempt <= 1 {
				// Not ours: no earlier attempt of this receive left it.
				return rep, permanent(contract.ErrTypeTargetModified, errTargetWithoutSnapshots(req.TargetDataset))
			}
			// What a receive killed moments ago (a crashed worker) leaves
			// until ZFS cleans it up: retry later, never destroy it here.
			return rep, fmt.Errorf("target %s exists without snapshots (a full receive aborted moments ago?); retrying", req.TargetDataset)
		}
		if exists {
			return rep, permanent(contract.ErrTypeTargetModified, fmt.Errorf("target %s exists and does not hold @%s (guid %d): refusing to receive a full stream over it; restore into a new dataset or destroy it",
				req.TargetDataset, s.To.Name, s.To.GUID))
		}
		if err := z.EnsureParent(ctx, req.TargetDataset); err != nil {
			return rep, classify(err)
		}
	case archivetypes.Incremental:
		if _, ok := snapByGUID(have, s.From.GUID); !ok {
			return rep, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("target %s lacks @%s (guid %d), the base of %s: restore the chain in order",
				req.TargetDataset, s.From.Name, s.From.GUID, s.ID))
		}
	}
	// -F on incrementals rolls back what mounting changed (atime) since
	// the previous stream; the chain itself was checked above.
	argv, err := z.ReceiveArgv(req.TargetDataset, zfsexec.ReceiveOptions{Force: s.Kind == archivetypes.Incremental})
	if err != nil {
		return rep, classify(err)
	}
	n := a.newCounter(ctx, "restore")
	stop := a.heartbeatBytes(ctx, "restore", s.ID, s.PlainSize, &n.Int64, 2*time.Second)
	var cw *archive.CmdWriter
	w := archive.OpenOnWrite(func() (io.WriteCloser, error) {
		log.Info("verified data in hand: starting zfs receive")
		cw = archive.CommandWriter(ctx, r, argv)
		return cw, nil
	})
	// Progress is the verified, decrypted bytes zfs receive has taken.
	res, err := archive.Restore(ctx, archive.RestoreInput{
		Store: st, Stream: s, Identities: ids, SpoolDir: a.Config.Archive.SpoolDir,
		VerifyAll: a.Config.Archive.SpoolWholeStream,
	}, countingWriter{w, n})
	if err != nil {
		stop()
		if cw != nil {
			cw.Abort() // zfs receive discards the incomplete stream
			if s.Kind == archivetypes.Full {
				waitGone(ctx, z, req.TargetDataset)
			}
		}
		log.Warn("restore of the stream failed; zfs receive was stopped", zap.Bool("receive_started", w.Opened()), zap.Error(err))
		return rep, archiveErr(err)
	}
	for _, r := range res.Repaired {
		rep.Repaired = append(rep.Repaired, r.String())
		log.Warn("part object rebuilt from parity: archive the dataset again to restore full protection", zap.String("repaired", r.String()))
	}
	err = w.Close()
	stop()
	if err != nil {
		return rep, classify(fmt.Errorf("zfs receive %s: %w", req.TargetDataset, err))
	}
	after, err := z.ListSnapshots(ctx, req.TargetDataset)
	if err != nil {
		return rep, classify(err)
	}
	if _, ok := snapByGUID(after, s.To.GUID); !ok {
		return rep, fmt.Errorf("zfs receive finished but %s has no snapshot with guid %d (@%s)", req.TargetDataset, s.To.GUID, s.To.Name)
	}
	rep.Bytes, rep.Seconds = n.Load(), time.Since(begin).Seconds()
	log.Info("stream restored", zap.Int64("bytes", rep.Bytes), zap.Float64("seconds", rep.Seconds))
	return rep, nil
}

func finding(p archive.Problem) contract.Finding {
	kind := "error"
	switch {
	case errors.Is(p.Err, objstore.ErrNotFound):
		kind = "missing"
	case errors.Is(p.Err, objstore.ErrCorrupt):
		kind = "corrupt"
	}
	return contract.Finding{StreamID: p.Stream.ID, Cycle: p.Stream.Cycle, Key: p.Stream.Key, Kind: kind, Detail: p.Err.Error()}
}

// PlanArchiveVerify loads the manifest and checks every stream's object
// with HEAD (exists, size, SHA-256 where the store keeps it).
func (a *Activities) PlanArchiveVerify(ctx context.Context, req contract.VerifyPlanRequest) (contract.VerifyPlan, error) {
	p := contract.VerifyPlan{Dataset: req.Dataset.String()}
	if err := a.allowRetrieval(req.Tier, req.Days); err != nil {
		return p, err
	}
	st, m, err := a.readManifest(ctx, req.Dataset, req.Identity)
	if err != nil {
		return p, err
	}
	var all []archive.Stream
	for _, c := range m.Cycles {
		for _, s := range c.Streams {
			all = append(all, s)
			p.Streams = append(p.Streams, streamInfo(s))
			p.StoredBytes += s.StoredSize
			if s.Class.NeedsRestore() || a.Config.Archive.Store.Kind == "vault" {
				p.NeedsRestore = true
			}
		}
	}
	for _, pr := range archive.VerifyHead(ctx, st, all) {
		p.HeadProblems = append(p.HeadProblems, finding(pr))
	}
	return p, nil
}

// VerifyArchiveStream downloads every part of the stream and checks each
// part's and the whole object's SHA-256 against the manifest (a restore
// drill; it decrypts nothing, so no private key is needed).
func (a *Activities) VerifyArchiveStream(ctx context.Context, req contract.VerifyStreamRequest) (contract.VerifyStreamReport, error) {
	rep := contract.VerifyStreamReport{StreamID: req.StreamID}
	st, m, err := a.readManifest(ctx, req.Dataset, req.Identity)
	if err != nil {
		return rep, err
	}
	s, ok := findStream(m, req.Cycle, req.StreamID)
	if !ok {
		return rep, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("stream %s of cycle %s is not in the manifest of %s", req.StreamID, req.Cycle, req.Dataset))
	}
	n := a.newCounter(ctx, "verify")
	stop := a.heartbeatBytes(ctx, "verify", s.ID, s.StoredSize, &n.Int64, 2*time.Second)
	probs := archive.VerifyData(ctx, countingStore{st, n}, []archive.Stream{s}, a.Config.Archive.SpoolDir)
	stop()
	rep.Bytes = n.Load()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	for _, p := range probs {
		f := finding(p)
		if f.Kind == "error" && !objstore.IsPermanent(p.Err) {
			return rep, p.Err // transient (network): retry the activity
		}
		rep.Finding = &f
		return rep, nil
	}
	rep.OK = true
	return rep, nil
}

// waitGone waits (briefly) until an aborted full receive's dataset is gone:
// zfs-fuse removes it a moment after zfs receive exits.
func waitGone(ctx context.Context, z zfsexec.ZFS, ds zfsname.Dataset) {
	for i := 0; i < 60; i++ {
		if ok, err := z.Exists(context.WithoutCancel(ctx), ds); err != nil || !ok {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkRestoreTarget refuses, before anything is retrieved, a target
// dataset that exists without snapshots: a restore never receives over a
// dataset it did not create (one holding snapshots of the chain is an
// earlier restore's, which the receive resumes).
func (a *Activities) checkRestoreTarget(ctx context.Context, target string, ds zfsname.Dataset) error {
	var r zfsexec.Runner = a.Local
	if target != "" {
		_, sr, err := a.target(ctx, target)
		if err != nil {
			return err
		}
		defer sr.Close()
		r = sr
	}
	z := zfsexec.ZFS{R: r}
	exists, err := z.Exists(ctx, ds)
	if err != nil || !exists {
		return classify(err)
	}
	have, err := z.ListSnapshots(ctx, ds)
	if err != nil {
		return classify(err)
	}
	if len(have) == 0 {
		return permanent(contract.ErrTypeTargetModified, errTargetWithoutSnapshots(ds))
	}
	return nil
}

func errTargetWithoutSnapshots(ds zfsname.Dataset) error {
	return fmt.Errorf("target %s already exists and holds no snapshot: a restore needs a new dataset (give another --to, or destroy %s)", ds, ds)
}
