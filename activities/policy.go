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

	"zcloud/config"
	"zcloud/contract"
	"zcloud/retention"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

func (a *Activities) listPolicySnapshots(ctx context.Context, ds zfsname.Dataset, recursive bool) (contract.SnapshotListing, error) {
	caps, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return contract.SnapshotListing{}, err
	}
	z := zfsexec.ZFS{R: a.Local, Caps: caps}
	infos, err := z.ListSnapshots(ctx, ds)
	if err != nil {
		return contract.SnapshotListing{}, fmt.Errorf("list snapshots of %s: %w", ds, err)
	}
	counts, err := z.HoldCounts(ctx, ds, recursive)
	if err != nil {
		return contract.SnapshotListing{}, fmt.Errorf("read holds of %s: %w", ds, err)
	}
	own := map[string]int{}
	below := map[string][]string{}
	var held []zfsname.Snapshot
	for _, h := range counts {
		if h.Holds == 0 {
			continue
		}
		if h.Snapshot.Dataset() == ds {
			own[h.Snapshot.Name()] = h.Holds
			held = append(held, h.Snapshot)
			continue
		}
		rel, _ := ds.Rel(h.Snapshot.Dataset())
		below[h.Snapshot.Name()] = append(below[h.Snapshot.Name()], fmt.Sprintf("%s: %s", rel, plural(h.Holds, "hold")))
	}
	tags := map[string][]string{}
	listed := caps.Holds
	if listed && len(held) > 0 {
		his, err := z.Holds(ctx, held...)
		if err != nil {
			return contract.SnapshotListing{}, fmt.Errorf("list holds of %s: %w", ds, err)
		}
		for _, h := range his {
			tags[h.Snapshot.Name()] = append(tags[h.Snapshot.Name()], string(h.Tag))
		}
	}
	out := contract.SnapshotListing{Dataset: ds.String(), TagsListed: listed, ZFS: caps.String()}
	for _, si := range infos {
		name := si.Snapshot.Name()
		t := tags[name]
		sort.Strings(t)
		out.Snapshots = append(out.Snapshots, contract.PolicySnapshot{Name: name, Created: si.Creation, GUID: si.GUID,
			CreateTxg: si.CreateTXG, Holds: own[name], HoldTags: t, HeldBelow: below[name]})
	}
	return out, nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// HoldReasons explains why a held snapshot must stay: one reason per hold
// tag where tags are known, else the count.
func HoldReasons(s contract.PolicySnapshot) []string {
	var rs []string
	if s.Holds > 0 {
		if len(s.HoldTags) == 0 {
			rs = append(rs, "held ("+plural(s.Holds, "hold")+")")
		}
		for _, t := range s.HoldTags {
			rs = append(rs, "held by "+describeTag(t))
		}
	}
	for _, b := range s.HeldBelow {
		rs = append(rs, "held on descendant "+b)
	}
	return rs
}

func describeTag(tag string) string {
	switch {
	case tag == contract.ArchiveHoldTag:
		return tag + " (base of the archive chain)"
	case tag == StagingHoldTag:
		return tag + " (last snapshot staged: base of the next staging diff)"
	case strings.HasPrefix(tag, contract.HoldTagPrefix):
		return fmt.Sprintf("%s (newest snapshot replicated to target %s)", tag, strings.TrimPrefix(tag, contract.HoldTagPrefix))
	}
	return tag
}

// loadLocation is the I/O (the tz database) the pure retention code needs.
func loadLocation(p retention.Policy) (*time.Location, error) {
	loc, err := time.LoadLocation(p.WithDefaults().TimeZone)
	if err != nil {
		return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("policy time_zone %q: %w", p.TimeZone, err))
	}
	return loc, nil
}

// SnapshotDue compares Now with the creation of zcloud's newest snapshot
// of the dataset in the policy's time zone.
func (a *Activities) SnapshotDue(ctx context.Context, req contract.DueRequest) (contract.DueReport, error) {
	if _, err := a.allowPolicy(req.Dataset.String()); err != nil {
		return contract.DueReport{}, err
	}
	p := req.Policy.WithDefaults()
	loc, err := loadLocation(p)
	if err != nil {
		return contract.DueReport{}, err
	}
	caps, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return contract.DueReport{}, classify(err)
	}
	infos, err := zfsexec.ZFS{R: a.Local, Caps: caps}.ListSnapshots(ctx, req.Dataset)
	if err != nil {
		return contract.DueReport{}, classify(fmt.Errorf("list snapshots of %s: %w", req.Dataset, err))
	}
	var r contract.DueReport
	for _, si := range infos { // oldest first by createtxg
		if _, ours := retention.ParseSnapshotName(p.Prefix, si.Snapshot.Name()); ours {
			r.LastTaken, r.LastName = time.Unix(si.Creation, 0).UTC(), si.Snapshot.Name()
		}
	}
	r.Kinds = retention.DueKinds(p, loc, req.Now, r.LastTaken)
	r.Due = len(r.Kinds) > 0
	return r, nil
}

// PlanPrune lists the dataset's snapshots and holds and computes the plan.
// It changes nothing.
func (a *Activities) PlanPrune(ctx context.Context, req contract.PlanRequest) (contract.PlanReport, error) {
	if err := a.allowPrune(req); err != nil {
		return contract.PlanReport{}, err
	}
	p := req.Policy.WithDefaults()
	if err := p.Validate(); err != nil {
		return contract.PlanReport{}, permanent(contract.ErrTypeConfig, err)
	}
	loc, err := loadLocation(p)
	if err != nil {
		return contract.PlanReport{}, err
	}
	l, err := a.listPolicySnapshots(ctx, req.Dataset, p.Recursive)
	if err != nil {
		return contract.PlanReport{}, classify(err)
	}
	return BuildPlan(req, loc, l)
}

// BuildPlan is PlanPrune without the I/O: holds become protections with
// their reasons, then retention decides.
func BuildPlan(req contract.PlanRequest, loc *time.Location, l contract.SnapshotListing) (contract.PlanReport, error) {
	in := retention.PlanInput{Policy: req.Policy, Location: loc, Now: req.Now, IncludeForeign: req.IncludeForeign,
		Protected: append([]retention.Protection(nil), req.Protected...)}
	guids := map[string]uint64{}
	for _, s := range l.Snapshots {
		in.Snapshots = append(in.Snapshots, retention.Snapshot{Name: s.Name, Created: s.Created, GUID: s.GUID, CreateTxg: s.CreateTxg})
		for _, r := range HoldReasons(s) {
			in.Protected = append(in.Protected, retention.Protection{Name: s.Name, Reason: r})
		}
		guids[s.Name] = s.GUID
	}
	plan, err := retention.Plan(in)
	if err != nil {
		return contract.PlanReport{}, permanent(contract.ErrTypeConfig, err)
	}
	rep := contract.PlanReport{Dataset: req.Dataset.String(), Plan: plan, TagsListed: l.TagsListed}
	for _, n := range plan.ToDestroy() {
		rep.Destroy = append(rep.Destroy, contract.PlannedDestroy{Name: n, GUID: guids[n]})
	}
	rep.NeedsApproval, rep.Verdict = retention.NeedsApproval(plan, req.MaxDestroyCount, req.MaxDestroyPercent)
	rep.ID = PlanID(rep.Dataset, rep.Destroy)
	return rep, nil
}

// PlanID is a short digest of the dataset and the exact snapshots (name and
// GUID) a plan destroys: the same destroy set always has the same ID.
func PlanID(dataset string, destroy []contract.PlannedDestroy) string {
	h := sha256.New()
	h.Write([]byte(dataset))
	for _, d := range destroy {
		h.Write([]byte("\n" + d.Name + "\t" + strconv.FormatUint(d.GUID, 10)))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// DestroySnapshots destroys the planned snapshots one by one, re-checking
// each right before: a snapshot already gone is skipped (so a retry is
// harmless), one whose GUID changed is not the planned one, and one held
// since the plan was made stays (a hold added since the plan wins; ZFS
// itself refuses a held snapshot too, and that refusal is a skip as well).
// The list is only a request: before destroying anything it is checked
// against a plan made here from the configured policy (allowDestroy).
func (a *Activities) DestroySnapshots(ctx context.Context, req contract.DestroyRequest) (contract.DestroyReport, error) {
	p, err := a.allowPolicy(req.Dataset.String())
	if err != nil {
		return contract.DestroyReport{}, err
	}
	if req.Recursive && !p.Recursive {
		return contract.DestroyReport{}, notAllowed("recursive", "the policy for %s in the configuration is not recursive", req.Dataset)
	}
	if err := a.allowDestroy(ctx, p, req); err != nil {
		return contract.DestroyReport{}, err
	}
	caps, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return contract.DestroyReport{}, classify(err)
	}
	z := zfsexec.ZFS{R: a.Local, Caps: caps}
	log := a.Log.With(zap.String("dataset", req.Dataset.String()), zap.String("plan", req.PlanID))
	var rep contract.DestroyReport
	skip := func(name, reason string) {
		rep.Skipped = append(rep.Skipped, contract.Skipped{Name: name, Reason: reason})
		log.Info("prune: keeping planned snapshot", zap.String("snapshot", name), zap.String("reason", reason))
	}
	for i, pd := range req.Snapshots {
		activity.RecordHeartbeat(ctx, map[string]string{"destroying": fmt.Sprintf("%d of %d: %s", i+1, len(req.Snapshots), pd.Name)})
		snap, err := req.Dataset.Snapshot(pd.Name)
		if err != nil {
			return rep, permanent(contract.ErrTypeInvalidName, err)
		}
		reason, err := a.destroyBlocker(ctx, z, snap, pd.GUID, req.Recursive)
		if err != nil {
			return rep, classify(err)
		}
		if reason != "" {
			skip(pd.Name, reason)
			continue
		}
		err = z.DestroySnapshot(ctx, snap, req.Recursive)
		switch {
		case err == nil:
			rep.Destroyed = append(rep.Destroyed, pd.Name)
			a.Metrics.SnapshotDestroyed(req.Dataset.String())
			log.Info("prune: destroyed", zap.String("snapshot", snap.String()))
		case errors.Is(err, zfsexec.ErrDatasetNotFound):
			skip(pd.Name, contract.SkipGone)
		case errors.Is(err, zfsexec.ErrBusy):
			skip(pd.Name, "refused by zfs (held or busy): "+strings.TrimSpace(firstLine(err)))
		default:
			return rep, classify(fmt.Errorf("destroy %s: %w", snap, err))
		}
	}
	return rep, nil
}

// allowDestroy re-plans the prune from the configured policy (its rules,
// protections and include_foreign) and the dataset's snapshots and holds
// as they are now, and refuses a request naming any existing, unheld
// snapshot that plan keeps: a destroy list is written by the workflow (or
// whoever runs one), so it can only pick among what the config prunes.
// Buckets depend on the snapshots alone, never on the clock, and a
// snapshot taken since the plan only makes more prunable, so an honest
// plan passes. A snapshot gone, replaced (other GUID) or held since the
// plan is left to the per-snapshot re-check, which skips it.
func (a *Activities) allowDestroy(ctx context.Context, p config.Policy, req contract.DestroyRequest) error {
	loc, err := loadLocation(p.Policy)
	if err != nil {
		return err
	}
	l, err := a.listPolicySnapshots(ctx, req.Dataset, p.Recursive)
	if err != nil {
		return classify(err)
	}
	fresh, err := BuildPlan(contract.PlanRequest{Dataset: req.Dataset, Policy: p.Policy, IncludeForeign: p.IncludeForeign,
		Protected: p.Protections(), MaxDestroyCount: -1, MaxDestroyPercent: -1}, loc, l)
	if err != nil {
		return err
	}
	live := map[string]contract.PolicySnapshot{}
	for _, s := range l.Snapshots {
		live[s.Name] = s
	}
	keeps := map[string][]string{}
	for _, d := range fresh.Plan.Decisions {
		if d.Action == retention.Keep {
			keeps[d.Snapshot.Name] = d.Reasons
		}
	}
	for i, pd := range req.Snapshots {
		if _, err := req.Dataset.Snapshot(pd.Name); err != nil {
			return permanent(contract.ErrTypeInvalidName, err)
		}
		s, ok := live[pd.Name]
		if !ok || s.GUID != pd.GUID || len(HoldReasons(s)) > 0 {
			continue
		}
		if why, kept := keeps[pd.Name]; kept {
			return notAllowed(fmt.Sprintf("snapshots[%d]", i), "the policy for %s in the configuration keeps %s@%s (%s)",
				req.Dataset, req.Dataset, pd.Name, strings.Join(why, "; "))
		}
	}
	return nil
}

// destroyBlocker returns why snap must not be destroyed now ("" if it may).
func (a *Activities) destroyBlocker(ctx context.Context, z zfsexec.ZFS, snap zfsname.Snapshot, guid uint64, recursive bool) (string, error) {
	props, err := z.Get(ctx, []zfsname.PropName{"guid", "userrefs"}, snap)
	if errors.Is(err, zfsexec.ErrDatasetNotFound) {
		return contract.SkipGone, nil
	}
	if err != nil {
		return "", err
	}
	for _, p := range props {
		switch p.Property {
		case "guid":
			if p.Value != strconv.FormatUint(guid, 10) {
				return contract.SkipChanged, nil
			}
		case "userrefs":
			if n, _ := strconv.Atoi(p.Value); n > 0 {
				return "held since the plan (" + plural(n, "hold") + ")", nil
			}
		}
	}
	if recursive {
		counts, err := z.HoldCounts(ctx, snap.Dataset(), true)
		if err != nil {
			return "", err
		}
		for _, h := range counts {
			if h.Holds > 0 && h.Snapshot.Name() == snap.Name() && h.Snapshot.Dataset() != snap.Dataset() {
				return "held since the plan on descendant " + h.Snapshot.Dataset().String(), nil
			}
		}
	}
	return "", nil
}

func firstLine(err error) string {
	var ee *zfsexec.ExitError
	if errors.As(err, &ee) {
		s, _, _ := strings.Cut(strings.TrimSpace(ee.Stderr), "\n")
		return s
	}
	return err.Error()
}
