package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"zcloud/archive"
	"zcloud/archive/archivetypes"
	"zcloud/contract"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// PlanArchive compares the manifest in the store (the truth) with the
// source's snapshots, by GUID: a full when no chain exists, the cycle is
// due or the chain's base is gone; else an incremental from the last
// archived snapshot to the newest; skip when there is no new snapshot or
// (where ZFS reports `written`) nothing changed since the last one.
func (a *Activities) PlanArchive(ctx context.Context, req contract.ArchivePlanRequest) (contract.ArchivePlan, error) {
	d, err := a.allowArchive(req.Dataset.String())
	if err != nil {
		return contract.ArchivePlan{}, err
	}
	if err := a.allowCycle(d, req.Period); err != nil {
		return contract.ArchivePlan{}, err
	}
	if req.Limits != nil {
		if err := a.allowArchiveLimits(d, *req.Limits); err != nil {
			return contract.ArchivePlan{}, err
		}
	}
	_, _, m, err := a.openManifest(ctx, req.Dataset, a.Config.Archive.HostIdentity, true)
	if err != nil {
		return contract.ArchivePlan{}, err
	}
	caps, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return contract.ArchivePlan{}, classify(err)
	}
	z := zfsexec.ZFS{R: a.Local, Caps: caps}
	snaps, err := z.ListSnapshots(ctx, req.Dataset)
	if err != nil {
		return contract.ArchivePlan{}, classify(fmt.Errorf("source %s: %w", req.Dataset, err))
	}
	p := contract.ArchivePlan{Dataset: req.Dataset.String(), Cycles: len(m.Cycles)}
	for _, c := range m.Cycles {
		p.Streams += len(c.Streams)
	}
	if cur := m.Current(); cur != nil {
		p.CurrentCycle, p.CurrentVerified = cur.ID, !cur.Verified.IsZero()
	}
	if len(snaps) == 0 {
		p.Action, p.Reason = contract.ArchiveSkip, fmt.Sprintf("%s has no snapshots yet (a snapshot policy takes them)", req.Dataset)
		return p, nil
	}
	newest := snaps[len(snaps)-1]
	to := archivetypes.SnapRef{Name: newest.Snapshot.Name(), GUID: newest.GUID}
	full := func(reason string) (contract.ArchivePlan, error) {
		p.Action, p.Kind, p.Reason, p.To, p.Cycle = contract.ArchiveFull, archivetypes.Full, reason, to, archive.CycleID(req.Now)
		if m.Cycle(p.Cycle) != nil {
			return p, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("cycle %s already exists in the manifest of %s: run again in a second", p.Cycle, req.Dataset))
		}
		if caps.SendEstimate {
			p.EstimatedBytes, _ = z.EstimateSize(ctx, newest.Snapshot, zfsexec.SendOptions{})
		}
		return p, nil
	}
	tip, hasTip := m.Latest()
	cur := m.Current()
	switch {
	case !hasTip:
		return full("no archive chain yet: starting the first cycle")
	case archive.CycleDue(m, req.Now, req.Period):
		if _, ok := cur.Full(); !ok {
			return full(fmt.Sprintf("current cycle %s has no full stream", cur.ID))
		}
		return full(fmt.Sprintf("cycle %s started %s, the cycle period is %s: starting a new cycle",
			cur.ID, cur.Started.UTC().Format(time.RFC3339), req.Period))
	}
	var base *zfsexec.SnapshotInfo
	for i := range snaps {
		if snaps[i].GUID == tip.To.GUID {
			base = &snaps[i]
		}
	}
	if base == nil {
		return full(fmt.Sprintf("the chain's last snapshot @%s (guid %d) is gone from the source: starting a new cycle", tip.To.Name, tip.To.GUID))
	}
	if base.GUID == newest.GUID {
		p.Action, p.Reason = contract.ArchiveSkip, fmt.Sprintf("no new snapshot since @%s, the last archived", tip.To.Name)
		return p, nil
	}
	if base.CreateTXG > newest.CreateTXG {
		return p, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("the chain's last snapshot @%s is newer than the newest snapshot @%s", base.Snapshot.Name(), newest.Snapshot.Name()))
	}
	if changed, known := a.changedSince(ctx, z, snaps, *base); known && !changed {
		p.Action, p.Reason = contract.ArchiveSkip, fmt.Sprintf("nothing changed since @%s (written = 0 for every newer snapshot)", tip.To.Name)
		return p, nil
	}
	p.Action, p.Kind, p.Cycle = contract.ArchiveIncremental, archivetypes.Incremental, cur.ID
	p.From = archivetypes.SnapRef{Name: base.Snapshot.Name(), GUID: base.GUID}
	p.To = to
	p.Reason = fmt.Sprintf("incremental @%s → @%s in cycle %s", p.From.Name, p.To.Name, cur.ID)
	if caps.SendEstimate {
		p.EstimatedBytes, _ = z.EstimateSize(ctx, newest.Snapshot, zfsexec.SendOptions{From: zfsexec.FromSnapshot(base.Snapshot)})
	}
	return p, nil
}

// changedSince sums `written` over the snapshots after base. known is
// false where ZFS has no `written` (zfs-fuse): then every new snapshot is
// archived.
func (a *Activities) changedSince(ctx context.Context, z zfsexec.ZFS, snaps []zfsexec.SnapshotInfo, base zfsexec.SnapshotInfo) (changed, known bool) {
	if z.Caps.Impl != zfsexec.ImplOpenZFS {
		return false, false
	}
	var targets []zfsexec.Target
	for _, s := range snaps {
		if s.CreateTXG > base.CreateTXG {
			targets = append(targets, s.Snapshot)
		}
	}
	props, err := z.Get(ctx, []zfsname.PropName{"written"}, targets...)
	if err != nil || len(props) != len(targets) {
		return false, false
	}
	for _, p := range props {
		if n, err := strconv.ParseUint(p.Value, 10, 64); err != nil || n > 0 {
			return true, true
		}
	}
	return false, true
}

// ArchiveStream runs zfs send through archive.Upload (age encryption,
// SHA-256 of plain and stored bytes, parts) into the stream's
// deterministic key, heartbeating the plain bytes, then records the stream
// in the manifest. A retry (a crash, a lost connection) sends the stream
// again to the same key, replacing the partial object, so no duplicate is
// ever stored; a stream already in the manifest is not sent again.
func (a *Activities) ArchiveStream(ctx context.Context, req contract.ArchiveStreamRequest) (contract.ArchiveStreamReport, error) {
	begin := time.Now()
	rep, err := a.archiveStream(ctx, req)
	// Counted whatever the outcome: a failed upload is a failure in the
	// metrics, not an "ok".
	a.Metrics.SendDone("archive", "archive", rep.Stream.PlainSize, time.Since(begin), err)
	return rep, err
}

func (a *Activities) archiveStream(ctx context.Context, req contract.ArchiveStreamRequest) (contract.ArchiveStreamReport, error) {
	if err := a.allowArchiveStream(req.Dataset.String(), string(req.Class), req.Raw); err != nil {
		return contract.ArchiveStreamReport{}, err
	}
	begin := time.Now()
	rep := contract.ArchiveStreamReport{Attempt: activity.GetInfo(ctx).Attempt}
	if prev, ok := previousProgress(ctx); ok {
		rep.RestartedAfter = prev.Bytes
	}
	log := a.Log.With(zap.String("dataset", req.Dataset.String()), zap.String("cycle", req.Cycle), zap.String("to", req.To.Name))
	if req.Kind != archivetypes.Full && req.Kind != archivetypes.Incremental {
		return rep, permanent(contract.ErrTypeConfig, fmt.Errorf("stream kind %q", req.Kind))
	}
	st, hostIDs, m, err := a.openManifest(ctx, req.Dataset, a.Config.Archive.HostIdentity, true)
	if err != nil {
		return rep, err
	}
	rcpts, err := a.streamRecipients()
	if err != nil {
		return rep, err
	}
	id := archive.StreamID(req.Kind, req.From.GUID, req.To.GUID)
	if s, ok := findStream(m, req.Cycle, id); ok {
		log.Info("stream already archived by an earlier attempt", zap.String("stream", id))
		rep.Stream, rep.AlreadyArchived = streamInfo(s), true
		return rep, nil
	}
	if err := canAdd(m, req); err != nil {
		return rep, err
	}

	// The snapshots, by GUID: a name may have been reused since the plan.
	caps, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return rep, classify(err)
	}
	z := zfsexec.ZFS{R: a.Local, Caps: caps}
	snaps, err := z.ListSnapshots(ctx, req.Dataset)
	if err != nil {
		return rep, classify(err)
	}
	toSnap, ok := snapByGUID(snaps, req.To.GUID)
	if !ok {
		return rep, permanent(contract.ErrTypeNotFound, fmt.Errorf("snapshot @%s (guid %d) of %s no longer exists", req.To.Name, req.To.GUID, req.Dataset))
	}
	opts := zfsexec.SendOptions{Raw: req.Raw}
	if req.Kind == archivetypes.Incremental {
		fromSnap, ok := snapByGUID(snaps, req.From.GUID)
		if !ok {
			return rep, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("incremental base @%s (guid %d) of %s no longer exists: the next run starts a new cycle", req.From.Name, req.From.GUID, req.Dataset))
		}
		opts.From = zfsexec.FromSnapshot(fromSnap)
	}
	argv, err := z.SendArgv(toSnap, opts)
	if err != nil {
		return rep, classify(err)
	}
	var total int64
	if caps.SendEstimate {
		total, _ = z.EstimateSize(ctx, toSnap, opts)
	}
	key := archive.StreamKey(a.archivePrefix(), req.Dataset, req.Cycle, id)
	log.Info("archiving", zap.String("stream", id), zap.String("key", key), zap.Int32("attempt", rep.Attempt), zap.Int64("previous_attempt_bytes", rep.RestartedAfter))

	// Progress is the (encrypted) bytes the store has taken, not what zfs
	// send has produced: the pipeline buffers run ahead of a slow link.
	n := a.newCounter(ctx, "upload")
	stop := a.heartbeatBytes(ctx, "upload", id, total, &n.Int64, 2*time.Second)
	src := archive.CommandReader(ctx, a.Local, argv)
	res, err := archive.Upload(ctx, archive.UploadInput{
		Store: countingStore{st, n}, Key: key, Source: src, Recipients: rcpts, Class: req.Class, ExpectedSize: total,
		Metadata: map[string]string{"zcloud-stream": id},
		Parity:   a.paritySpec(), Parallel: a.Config.Archive.Store.Parallel,
	})
	src.Close()
	stop()
	if err != nil {
		return rep, archiveErr(err)
	}
	s := archive.NewStream(req.Kind, req.From, req.To, req.Cycle, req.Raw, res, time.Now())
	if _, err := a.saveManifest(ctx, st, req.Dataset, hostIDs, func(m *archive.Manifest) error {
		if err := m.AddStream(s); err != nil {
			return permanent(contract.ErrTypeBrokenChain, err)
		}
		return nil
	}); err != nil {
		return rep, err
	}
	rep.Stream, rep.Seconds = streamInfo(s), time.Since(begin).Seconds()
	log.Info("archived", zap.String("stream", id), zap.Int64("plain", res.PlainSize), zap.Int64("stored", res.StoredSize))
	return rep, nil
}

// canAdd checks before uploading that the manifest will take the stream.
func canAdd(m *archive.Manifest, req contract.ArchiveStreamRequest) error {
	if req.Kind == archivetypes.Full {
		if c := m.Cycle(req.Cycle); c != nil {
			return permanent(contract.ErrTypeBrokenChain, fmt.Errorf("cycle %s already has a full stream", req.Cycle))
		}
		return nil
	}
	cur := m.Current()
	if cur == nil || cur.ID != req.Cycle || len(cur.Streams) == 0 {
		return permanent(contract.ErrTypeBrokenChain, fmt.Errorf("incremental for cycle %s, but the current cycle is %v", req.Cycle, cycleName(cur)))
	}
	if tip := cur.Streams[len(cur.Streams)-1]; tip.To.GUID != req.From.GUID {
		return permanent(contract.ErrTypeBrokenChain, fmt.Errorf("incremental from @%s (guid %d), but the chain ends at @%s (guid %d)", req.From.Name, req.From.GUID, tip.To.Name, tip.To.GUID))
	}
	return nil
}

func cycleName(c *archive.Cycle) string {
	if c == nil {
		return "none"
	}
	return c.ID
}

func snapByGUID(snaps []zfsexec.SnapshotInfo, guid uint64) (zfsname.Snapshot, bool) {
	for _, s := range snaps {
		if s.GUID == guid {
			return s.Snapshot, true
		}
	}
	return zfsname.Snapshot{}, false
}

// CheckArchiveCycle verifies the cycle's objects with HEAD (size and
// SHA-256 against the manifest), runs the sanity check against the previous
// cycle's full, and only if both pass marks the cycle Verified in the
// manifest: from then on older cycles may be deleted.
func (a *Activities) CheckArchiveCycle(ctx context.Context, req contract.CycleCheckRequest) (contract.CycleCheck, error) {
	d, err := a.allowArchive(req.Dataset.String())
	if err != nil {
		return contract.CycleCheck{}, err
	}
	if err := a.allowSanity(d, req.SanityMinPercent, req.AcceptSmaller); err != nil {
		return contract.CycleCheck{}, err
	}
	out := contract.CycleCheck{Cycle: req.Cycle}
	st, hostIDs, m, err := a.openManifest(ctx, req.Dataset, a.Config.Archive.HostIdentity, false)
	if err != nil {
		return out, err
	}
	ci := -1
	for i := range m.Cycles {
		if m.Cycles[i].ID == req.Cycle {
			ci = i
		}
	}
	if ci < 0 {
		return out, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("cycle %s is not in the manifest of %s", req.Cycle, req.Dataset))
	}
	c := m.Cycles[ci]
	full, ok := c.Full()
	if !ok {
		return out, permanent(contract.ErrTypeBrokenChain, fmt.Errorf("cycle %s of %s has no full stream", req.Cycle, req.Dataset))
	}
	out.FullBytes = full.PlainSize
	if !c.Verified.IsZero() {
		out.Verified, out.Already = true, true
		return out, nil
	}
	for _, p := range archive.VerifyHead(ctx, st, c.Streams) {
		out.Problems = append(out.Problems, p.String())
	}
	if len(out.Problems) > 0 {
		return out, nil
	}
	var prev archive.Stream
	if ci > 0 {
		prev, _ = m.Cycles[ci-1].Full()
		out.PrevFullBytes = prev.PlainSize
	}
	if req.SanityMinPercent > 0 {
		if err := archive.SanityCheck(full, prev, req.SanityMinPercent); err != nil {
			if !req.AcceptSmaller {
				out.Sanity = err.Error()
				return out, nil
			}
			a.Log.Warn("sanity check waived by the operator", zap.String("dataset", req.Dataset.String()), zap.Error(err))
		}
	}
	now := time.Now().UTC()
	if _, err := a.saveManifest(ctx, st, req.Dataset, hostIDs, func(m *archive.Manifest) error {
		c := m.Cycle(req.Cycle)
		if c == nil {
			return permanent(contract.ErrTypeBrokenChain, fmt.Errorf("cycle %s vanished from the manifest", req.Cycle))
		}
		if c.Verified.IsZero() {
			c.Verified = now
		}
		return nil
	}); err != nil {
		return out, err
	}
	out.Verified = true
	return out, nil
}

func summarize(c archive.Cycle) contract.CycleSummary {
	s := contract.CycleSummary{ID: c.ID, Started: c.Started, Class: c.Class, Streams: len(c.Streams), MonthlyUSD: c.MonthlyUSD()}
	for _, st := range c.Streams {
		s.StoredBytes += st.StoredSize
		s.ParityBytes += st.ParityBytes()
		if at := st.Uploaded.Add(archive.MinStorageDuration(st.Class)); at.After(s.DeletableAt) {
			s.DeletableAt = at
		}
	}
	return s
}

// PlanArchiveDeletion applies the rotation rules: nothing until the
// current cycle is verified (uploaded, HEAD-checked, sanity-checked), never
// the current cycle, and no cycle before its streams' minimum storage
// duration unless forced.
func (a *Activities) PlanArchiveDeletion(ctx context.Context, req contract.DeletionPlanRequest) (contract.DeletionPlan, error) {
	d, err := a.allowArchive(req.Dataset.String())
	if err != nil {
		return contract.DeletionPlan{}, err
	}
	if err := a.allowForce(req.Force); err != nil {
		return contract.DeletionPlan{}, err
	}
	if err := a.allowDeleteLimits(req.MaxDeleteCycles, req.MaxDeleteBytes); err != nil {
		return contract.DeletionPlan{}, err
	}
	req.Now = workerNow(req.Now)
	p := contract.DeletionPlan{Dataset: req.Dataset.String()}
	_, _, m, err := a.openManifest(ctx, req.Dataset, a.Config.Archive.HostIdentity, false)
	if err != nil {
		return p, err
	}
	del := map[string]bool{}
	kept := map[string]bool{} // by keep_cycles
	for i := max(len(m.Cycles)-d.KeepCycles, 0); i < len(m.Cycles); i++ {
		kept[m.Cycles[i].ID] = true
	}
	for _, c := range archive.DeletableCycles(m, req.Now, nil, req.Force, d.KeepCycles) {
		del[c.ID] = true
		s := summarize(c)
		p.Delete = append(p.Delete, s)
		p.StoredBytes += s.StoredBytes
	}
	cur := m.Current()
	if cur != nil {
		for _, c := range m.Cycles[:len(m.Cycles)-1] {
			if del[c.ID] {
				continue
			}
			s := summarize(c)
			switch {
			case kept[c.ID]:
				s.Reason = fmt.Sprintf("keep_cycles %d keeps the %d newest cycles", d.KeepCycles, d.KeepCycles)
			case cur.Verified.IsZero():
				s.Reason = fmt.Sprintf("the current cycle %s is not verified yet", cur.ID)
			default:
				s.Reason = fmt.Sprintf("%s minimum storage lasts until %s (--force deletes earlier and pays for the rest)",
					s.Class, s.DeletableAt.UTC().Format(time.RFC3339))
			}
			p.Kept = append(p.Kept, s)
		}
	}
	var ids []string
	for _, c := range p.Delete {
		ids = append(ids, c.ID)
	}
	p.ID = deletionPlanID(p.Dataset, ids)
	var over []string
	if req.MaxDeleteCycles >= 0 && len(p.Delete) > req.MaxDeleteCycles {
		over = append(over, fmt.Sprintf("%d cycles > max_delete_cycles %d", len(p.Delete), req.MaxDeleteCycles))
	}
	if req.MaxDeleteBytes >= 0 && p.StoredBytes > req.MaxDeleteBytes && len(p.Delete) > 0 {
		over = append(over, fmt.Sprintf("%d stored bytes > max_delete_bytes %d", p.StoredBytes, req.MaxDeleteBytes))
	}
	p.NeedsApproval = len(over) > 0
	switch {
	case len(p.Delete) == 0:
		p.Verdict = "nothing to delete"
	case p.NeedsApproval:
		p.Verdict = fmt.Sprintf("deleting %d cycles (%d bytes) needs approval: %s", len(p.Delete), p.StoredBytes, strings.Join(over, ", "))
	default:
		p.Verdict = fmt.Sprintf("deleting %d cycles (%d bytes) is within the limits", len(p.Delete), p.StoredBytes)
	}
	return p, nil
}

// deletionPlanID is a short digest of the dataset and the exact cycles.
func deletionPlanID(dataset string, cycles []string) string {
	c := append([]string(nil), cycles...)
	sort.Strings(c)
	h := sha256.Sum256([]byte(dataset + "\x00" + strings.Join(c, "\x00")))
	return hex.EncodeToString(h[:6])
}

// DeleteArchiveCycles re-checks each cycle against the rotation rules (the
// manifest may have changed since the plan), deletes its objects, then
// removes it from the manifest. Objects go first: a crash in between
// leaves a manifest naming deleted objects of a cycle being deleted, which
// the retry finishes, never objects no manifest knows (orphans).
func (a *Activities) DeleteArchiveCycles(ctx context.Context, req contract.DeleteCyclesRequest) (contract.DeletionReport, error) {
	d, err := a.allowArchive(req.Dataset.String())
	if err != nil {
		return contract.DeletionReport{}, err
	}
	if err := a.allowForce(req.Force); err != nil {
		return contract.DeletionReport{}, err
	}
	req.Now = workerNow(req.Now)
	var rep contract.DeletionReport
	st, hostIDs, m, err := a.openManifest(ctx, req.Dataset, a.Config.Archive.HostIdentity, false)
	if err != nil {
		return rep, err
	}
	allowed := map[string]archive.Cycle{}
	for _, c := range archive.DeletableCycles(m, req.Now, nil, req.Force, d.KeepCycles) {
		allowed[c.ID] = c
	}
	var gone []string
	for _, id := range req.Cycles {
		c, ok := allowed[id]
		if !ok {
			if m.Cycle(id) == nil {
				gone = append(gone, id) // deleted by an earlier attempt
				continue
			}
			rep.Skipped = append(rep.Skipped, id+": no longer deletable under the rotation rules")
			continue
		}
		for _, s := range c.Streams {
			for _, k := range s.ObjectKeys() {
				if err := st.Delete(ctx, k); err != nil {
					return rep, archiveErr(fmt.Errorf("delete %s: %w", k, err))
				}
				rep.Objects++
			}
			rep.Bytes += s.StoredSize + s.ParityBytes()
			activity.RecordHeartbeat(ctx, contract.Progress{Phase: "delete", Bytes: rep.Bytes, Detail: s.Key})
		}
		gone = append(gone, id)
	}
	if _, err := a.saveManifest(ctx, st, req.Dataset, hostIDs, func(m *archive.Manifest) error {
		for _, id := range gone {
			if cur := m.Current(); cur != nil && cur.ID == id {
				return permanent(contract.ErrTypeBrokenChain, fmt.Errorf("refusing to remove the current cycle %s", id))
			}
			m.RemoveCycle(id)
		}
		return nil
	}); err != nil {
		return rep, err
	}
	rep.Deleted = gone
	a.Log.Info("archive cycles deleted", zap.String("dataset", req.Dataset.String()), zap.Strings("cycles", gone), zap.Int("objects", rep.Objects))
	return rep, nil
}

// DescribeArchive reads the manifest with the host identity (or the named
// identity) and summarizes it.
func (a *Activities) DescribeArchive(ctx context.Context, req contract.VerifyPlanRequest) (contract.ManifestSummary, error) {
	out := contract.ManifestSummary{Dataset: req.Dataset.String()}
	_, m, err := a.readManifest(ctx, req.Dataset, req.Identity)
	var pe interface{ Type() string }
	if errors.As(err, &pe) && pe.Type() == contract.ErrTypeNoArchive {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Found, out.Generation, out.Updated, out.FromPrevious = true, m.Generation, m.Updated, m.FromPrevious
	for _, c := range m.Cycles {
		out.Cycles = append(out.Cycles, summarize(c))
		if !c.Verified.IsZero() {
			out.Verified = append(out.Verified, c.ID)
		}
		for _, s := range c.Streams {
			out.Streams = append(out.Streams, streamInfo(s))
		}
	}
	return out, nil
}
