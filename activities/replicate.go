package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/replication"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// CheckTarget connects to the target (verifying its host key) and detects
// both ends' ZFS. An unreachable host or a wrong host key is permanent here:
// the run stops with a clear error instead of retrying for hours.
func (a *Activities) CheckTarget(ctx context.Context, target string) (contract.TargetCheck, error) {
	return a.CheckTargetAt(ctx, contract.CheckRequest{Target: target})
}

// CheckTargetAt is CheckTarget for a target reached at req.At (an EC2
// session's instance).
func (a *Activities) CheckTargetAt(ctx context.Context, req contract.CheckRequest) (contract.TargetCheck, error) {
	target := req.Target
	if req.Source != "" {
		if err := a.allowReplication(req.Source, target, req.TargetDataset, req.Raw, req.AllowPlaintext); err != nil {
			return contract.TargetCheck{}, err
		}
	}
	_, r, err := a.targetAt(ctx, target, req.At)
	if err != nil {
		return contract.TargetCheck{}, err
	}
	defer r.Close()
	if _, err := r.Connect(ctx); err != nil {
		var ue *zfsexec.UnreachableError
		if errors.As(err, &ue) {
			return contract.TargetCheck{}, permanent(contract.ErrTypeUnreachable, fmt.Errorf("target %s unreachable: %w", target, err))
		}
		return contract.TargetCheck{}, classify(err)
	}
	tc, err := a.capabilities(ctx, r)
	if err != nil {
		return contract.TargetCheck{}, classify(fmt.Errorf("target %s: detect ZFS: %w", target, err))
	}
	sc, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return contract.TargetCheck{}, classify(fmt.Errorf("source: detect ZFS: %w", err))
	}
	return contract.TargetCheck{Target: target, Host: r.Host(), SourceZFS: sc.String(), TargetZFS: tc.String(),
		CanResume: tc.ResumableReceive && sc.ResumableReceive, CanRawSend: tc.RawSend && sc.RawSend}, nil
}

// TakeSnapshot creates the snapshot; one that already exists (a retried
// activity whose first attempt succeeded) is success.
func (a *Activities) TakeSnapshot(ctx context.Context, req contract.SnapshotRequest) error {
	if err := a.allowSnapshot(req.Snapshot.Dataset().String()); err != nil {
		return err
	}
	z := zfsexec.ZFS{R: a.Local}
	exists, err := z.Exists(ctx, req.Snapshot.Dataset())
	if err != nil {
		return classify(err)
	}
	if !exists {
		return permanent(contract.ErrTypeNotFound, fmt.Errorf("source dataset %s does not exist", req.Snapshot.Dataset()))
	}
	if ok, err := z.SnapshotExists(ctx, req.Snapshot); err != nil {
		return classify(err)
	} else if ok {
		return nil
	}
	if err := z.Snapshot(ctx, req.Recursive, zfsexec.Props{}, req.Snapshot); err != nil {
		return classify(err)
	}
	return nil
}

// SendSnapshots sends whatever the target lacks up to req.Snapshot: a full
// stream the first time, an incremental (-I) from the newest common snapshot
// (matched by GUID) after, or a resume from the target's receive token. It
// works out the plan afresh on every attempt, so a retry after a crash does
// exactly what is still missing.
func (a *Activities) SendSnapshots(ctx context.Context, req contract.SendRequest) (contract.SendReport, error) {
	begin := time.Now()
	asked := req // what a follow-up send asks again: req.Raw is rewritten below
	if err := a.allowReplication(req.Source.String(), req.Target, req.TargetDataset.String(), req.Raw, req.AllowPlaintext); err != nil {
		return contract.SendReport{}, err
	}
	// Connecting and planning run a dozen commands on both ends before the
	// stream's own heartbeats start (and the cursor after it): on a busy
	// host that outlasts a short heartbeat timeout, so beat meanwhile.
	beat := startBeat(ctx, "plan")
	defer func() { beat.stop() }()
	tcfg, r, err := a.targetAt(ctx, req.Target, req.At)
	if err != nil {
		return contract.SendReport{}, err
	}
	defer r.Close()
	srcCaps, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return contract.SendReport{}, classify(err)
	}
	dstCaps, err := a.capabilities(ctx, r)
	if err != nil {
		return contract.SendReport{}, classify(err)
	}
	src := zfsexec.ZFS{R: a.Local, Caps: srcCaps}
	dst := zfsexec.ZFS{R: r, Caps: dstCaps}
	log := a.Log.With(zap.String("source", req.Source.String()), zap.String("target", req.Target+":"+req.TargetDataset.String()))

	mode, err := sendMode(ctx, src, dst, req)
	if err != nil {
		return contract.SendReport{}, err
	}
	if mode == contract.ModePlaintext {
		log.Warn("sending a natively encrypted dataset decrypted: the target stores plaintext (allow_plaintext_on_target)")
	}
	req.Raw = mode == contract.ModeRaw
	plan, err := planSend(ctx, src, dst, req)
	if err != nil {
		return contract.SendReport{}, err
	}
	rep := contract.SendReport{To: req.Snapshot.String(), Transport: tcfg.Transport, Mode: mode}
	if plan.alreadyDone {
		rep.AlreadyDone = true
		a.keepCursor(ctx, src, req, log)
		return rep, nil
	}
	rep.Full, rep.Resumed = plan.opts.From.IsZero() && plan.opts.ResumeToken == "", plan.opts.ResumeToken != ""
	rep.From = plan.opts.From.String()
	if rep.Full {
		if err := dst.EnsureParent(ctx, req.TargetDataset); err != nil {
			return rep, classify(err)
		}
	}
	var total int64
	if srcCaps.SendEstimate {
		total, _ = src.EstimateSize(ctx, plan.to, plan.opts)
	}
	log.Info("sending", zap.Bool("full", rep.Full), zap.String("from", rep.From), zap.Bool("resume", rep.Resumed), zap.Int64("estimate", total))

	beat.stop()
	m := newMeter(a.newCounter(ctx, "send"), tcfg.BandwidthLimit)
	stop := a.heartbeatBytes(ctx, "send", "", total, &m.n.Int64, 2*time.Second)
	err = replication.Pipe(ctx, m.reader,
		func(ctx context.Context, w io.Writer) error { return src.Send(ctx, plan.to, plan.opts, w) },
		func(ctx context.Context, rd io.Reader) error {
			if tcfg.Transport != "parallel" {
				return dst.Receive(ctx, req.TargetDataset, plan.recv, rd)
			}
			argv, err := dst.ReceiveArgv(req.TargetDataset, plan.recv)
			if err != nil {
				return err
			}
			return a.receiveParallel(ctx, r, tcfg, argv, rd)
		})
	stop()
	beat = startBeat(ctx, "finish")
	rep.Bytes = m.n.Load()
	rep.Seconds = time.Since(begin).Seconds()
	a.Metrics.SendDone(req.Target, tcfg.Transport, rep.Bytes, time.Since(begin), err)
	if err != nil {
		if staleResume(err, rep.Resumed) {
			// The target's partial state cannot be resumed (its snapshot is
			// gone on the source, or the state itself is): discard it and
			// send afresh from the newest common snapshot.
			log.Warn("resume state is stale: discarding it (zfs receive -A) and sending afresh", zap.Error(err))
			aerr := dst.AbortReceive(ctx, req.TargetDataset)
			if aerr != nil && !errors.Is(aerr, zfsexec.ErrNoResumeState) && !errors.Is(aerr, zfsexec.ErrDatasetNotFound) {
				return rep, classify(aerr)
			}
			if rep.Resumed {
				// No token is left, so this plans a plain send (once).
				return a.SendSnapshots(ctx, asked)
			}
		}
		return rep, classify(err)
	}
	activity.RecordHeartbeat(ctx, m.progress("done", total))
	log.Info("sent", zap.String("to", plan.to.String()), zap.Int64("bytes", rep.Bytes), zap.Float64("seconds", rep.Seconds))
	if rep.Resumed || plan.to != req.Snapshot {
		// The resumed stream ends at the snapshot the interrupted send was
		// for, which may be older than req.Snapshot (an earlier session's),
		// and a send from a bookmark ends at the first snapshot after it:
		// go on from there, so the target really reaches req.Snapshot.
		more, err := a.SendSnapshots(ctx, asked)
		if err != nil {
			return rep, err
		}
		if !more.AlreadyDone {
			more.Bytes += rep.Bytes
			if rep.Resumed {
				more.Resumed = true
			} else {
				more.From = rep.From // the bookmark the chain started from
			}
			more.Seconds = time.Since(begin).Seconds()
			return more, nil
		}
	}
	a.keepCursor(ctx, src, req, log)
	return rep, nil
}

// sendMode decides how req's source is sent. A natively encrypted source
// goes raw (zfs send -w), so the target stores ciphertext and never needs
// the key, unless req.AllowPlaintext; a target that cannot receive raw
// streams is then refused, never silently sent plaintext.
func sendMode(ctx context.Context, src, dst zfsexec.ZFS, req contract.SendRequest) (string, error) {
	encrypted := false
	if src.Caps.NativeEncryption {
		enc, err := src.GetOne(ctx, req.Source, "encryption")
		if err != nil {
			return "", classify(err)
		}
		encrypted = enc != "off" && enc != "-" && enc != ""
	}
	switch {
	case !encrypted && req.Raw:
		return contract.ModeRaw, nil
	case !encrypted:
		return contract.ModePlain, nil
	case req.AllowPlaintext && !req.Raw:
		return contract.ModePlaintext, nil
	case !dst.Caps.RawSend:
		return "", permanent(contract.ErrTypeUnsupported, fmt.Errorf("%s is natively encrypted and is sent raw so that %s never holds plaintext, but %s's ZFS (%s) cannot receive a raw stream: use a target with OpenZFS >= 0.8, or set allow_plaintext_on_target: true on the replication to store it decrypted there",
			req.Source, req.Target, req.Target, dst.Caps.Impl))
	}
	return contract.ModeRaw, nil
}

// staleResume says err means the target's partial receive state is of no
// use: a resume whose token went stale (OpenZFS's messages, captured in
// zfsexec/testdata/openzfs-2.3.2/resume-capture.txt), or a plain stream
// refused because partial state is in the way.
func staleResume(err error, resumed bool) bool {
	if errors.Is(err, zfsexec.ErrResumeTokenPresent) {
		return true
	}
	return resumed && (errors.Is(err, zfsexec.ErrResumeTokenStale) || errors.Is(err, zfsexec.ErrNoResumeState) ||
		errors.Is(err, zfsexec.ErrStreamMismatch))
}

type sendPlan struct {
	alreadyDone bool
	to          zfsname.Snapshot // req.Snapshot, or the first hop from a bookmark
	opts        zfsexec.SendOptions
	recv        zfsexec.ReceiveOptions
}

// planSend lists both sides and lets replication.PlanSend decide; a
// conflict (nothing in common, diverged, target newer, no such snapshot)
// is permanent: retrying cannot change it.
func planSend(ctx context.Context, src, dst zfsexec.ZFS, req contract.SendRequest) (sendPlan, error) {
	in := replication.Input{Source: req.Source, To: req.Snapshot.Name(), Target: req.TargetDataset}
	srcSnaps, err := src.ListSnapshots(ctx, req.Source)
	if err != nil {
		return sendPlan{}, classify(err)
	}
	in.SourceSnaps = planned(srcSnaps)
	if in.TargetExists, err = dst.Exists(ctx, req.TargetDataset); err != nil {
		return sendPlan{}, classify(err)
	}
	if in.TargetExists && dst.Caps.ResumableReceive {
		tok, err := dst.ResumeToken(ctx, req.TargetDataset)
		if err != nil {
			return sendPlan{}, classify(err)
		}
		in.ResumeToken = string(tok)
	}
	if in.TargetExists && in.ResumeToken == "" {
		dstSnaps, err := dst.ListSnapshots(ctx, req.TargetDataset)
		if err != nil {
			return sendPlan{}, classify(err)
		}
		in.TargetSnaps = planned(dstSnaps)
		if src.Caps.Bookmarks {
			bms, err := src.ListBookmarks(ctx, req.Source)
			if err != nil {
				return sendPlan{}, classify(err)
			}
			for _, b := range bms {
				in.SourceBookmarks = append(in.SourceBookmarks, replication.Snapshot{Name: b.Bookmark.Name(), GUID: b.GUID, CreateTXG: b.CreateTXG})
			}
		}
	}
	p, err := replication.PlanSend(in)
	var conflict *replication.Conflict
	if errors.As(err, &conflict) {
		typ := contract.ErrTypeStreamMismatch
		switch conflict.Kind {
		case replication.MissingSnapshot:
			typ = contract.ErrTypeNotFound
		case replication.Diverged:
			typ = contract.ErrTypeTargetModified
		}
		return sendPlan{}, permanent(typ, err)
	}
	if err != nil {
		return sendPlan{}, err
	}
	plan := sendPlan{to: req.Snapshot, opts: zfsexec.SendOptions{Raw: req.Raw}, recv: zfsexec.ReceiveOptions{Resumable: dst.Caps.ResumableReceive}}
	switch p.Kind {
	case replication.UpToDate:
		plan.alreadyDone = true
	case replication.Resume:
		plan.opts = zfsexec.SendOptions{ResumeToken: zfsname.ResumeToken(p.ResumeToken)}
	case replication.Incremental:
		from, err := req.Source.Snapshot(p.From.Name)
		if err != nil {
			return plan, classify(err)
		}
		plan.opts.From = zfsexec.FromSnapshot(from)
		plan.opts.Intermediates = true
		// -F rolls back changes made on the target since the common
		// snapshot (atime, a stray file); newer snapshots there are a
		// conflict the planner already refused.
		plan.recv.Force = true
	case replication.FromBookmark:
		from, err := req.Source.Bookmark(p.From.Name)
		if err != nil {
			return plan, classify(err)
		}
		if plan.to, err = req.Source.Snapshot(p.To.Name); err != nil {
			return plan, classify(err)
		}
		plan.opts.From = zfsexec.FromBookmark(from)
		plan.recv.Force = true
	}
	return plan, nil
}

// planned is what the planner needs of listed snapshots.
func planned(list []zfsexec.SnapshotInfo) []replication.Snapshot {
	out := make([]replication.Snapshot, len(list))
	for i, s := range list {
		out[i] = replication.Snapshot{Name: s.Snapshot.Name(), GUID: s.GUID, CreateTXG: s.CreateTXG}
	}
	return out
}

// receiveParallel receives rd into recvArgv on r over the encrypted
// parallel stream (replication.Parallel), installing the receiver first.
func (a *Activities) receiveParallel(ctx context.Context, r *zfsexec.SSH, tcfg config.Target, recvArgv []string, rd io.Reader) error {
	dst, err := zfsname.ParseDevice(tcfg.ReceiverPath) // an absolute path of safe characters
	if err != nil {
		return permanent(contract.ErrTypeConfig, fmt.Errorf("receiver_path: %w", err))
	}
	bin := a.ReceiverBinary // empty: the running zcloud executable
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	p := replication.Parallel{Binary: bin, ReceiverPath: dst, Cipher: tcfg.Cipher,
		Streams: tcfg.Streams, PortMin: tcfg.PortMin, PortMax: tcfg.PortMax, Observe: a.SessionObserver, Log: a.Log}
	return p.Receive(ctx, r, recvArgv, rd)
}
