package activities

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"zcloud/cloud/ec2"
	"zcloud/cloud/ec2/ec2types"
	"zcloud/cloud/objstore"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
	"zcloud/retention"
	"zcloud/zfsname"
)

// What the config allows. A workflow's input, and so every activity
// request, is only a request: anyone who can start a workflow on the
// namespace (or run a worker of their own on the task queue) writes it.
// The worker's own config is what the operator trusts, so each activity
// checks its request here, against that config, before it connects to
// anything, reads a key or sends a byte. A request may choose among what
// the config allows; it can never add to it (docs/security.md).

// notAllowed refuses a request field: "field: not allowed; why".
// Retrying cannot change the config, so it is permanent.
func notAllowed(field, format string, args ...any) error {
	return permanent(contract.ErrTypeNotAllowed, fmt.Errorf("%s: not allowed; %s", field, fmt.Sprintf(format, args...)))
}

// allowTarget returns the configured target called name.
func (a *Activities) allowTarget(name string) (config.Target, error) {
	t, ok := a.Config.Targets[name]
	if !ok {
		return t, notAllowed("target", "no target named %q in the configuration (known: %s)", name, strings.Join(a.Config.TargetNames(), ", "))
	}
	return t, nil
}

// allowReplication checks that source goes to targetDataset on target, raw
// or not, as a `replications:` entry says: an input cannot send a dataset
// the operator never sent off site, write where the operator never wrote,
// or send decrypted what the config sends raw or encrypted (plaintext asks
// to send a natively encrypted source decrypted: allow_plaintext_on_target).
func (a *Activities) allowReplication(source, target, targetDataset string, raw, plaintext bool) error {
	if _, err := a.allowTarget(target); err != nil {
		return err
	}
	sourceKnown := false
	for _, r := range a.Config.Replications {
		if r.Source != source || r.Target != target {
			continue
		}
		sourceKnown = true
		if r.TargetDataset != targetDataset {
			continue
		}
		if r.Raw != raw {
			return notAllowed("raw", "the configuration replicates %s to %s with raw: %t", source, target, r.Raw)
		}
		if plaintext && !r.AllowPlaintextOnTarget {
			return notAllowed("allow_plaintext", "the configuration does not set allow_plaintext_on_target for %s to %s:%s", source, target, targetDataset)
		}
		return nil
	}
	if !sourceKnown {
		return notAllowed("source", "no replication of %s to target %s in the configuration", source, target)
	}
	return notAllowed("target_dataset", "the configuration does not replicate %s to %s:%s", source, target, targetDataset)
}

// allowHold checks a hold tag against what uses it: zcloud-<target> on a
// configured replication source for that target, zcloud-archive on an
// archived dataset. Moving a tag releases it elsewhere, so a forged one
// could unprotect another chain's base.
func (a *Activities) allowHold(snap zfsname.Snapshot, tag string) error {
	ds := snap.Dataset().String()
	if tag == StagingHoldTag {
		if _, ok := a.Config.StagingFor(ds); !ok {
			return notAllowed("tag", "%s has no staging: entry in the configuration", ds)
		}
		return nil
	}
	if tag == contract.ArchiveHoldTag {
		if _, ok := a.Config.ArchiveDatasetFor(ds); !ok {
			return notAllowed("tag", "%s is not an archived dataset in the configuration", ds)
		}
		return nil
	}
	for _, r := range a.Config.Replications {
		if r.Source == ds && tag == "zcloud-"+r.Target {
			return nil
		}
	}
	return notAllowed("tag", "no replication of %s holds %q in the configuration", ds, tag)
}

// allowPool checks a pool's settings carried in a request against the
// configured pool of that name. Everything that says where commands run,
// which AWS account and instance, which key is read and which volumes are
// the pool's must be the config's; a run may keep its own layout and
// timings (the workflow records the settings it started with).
func (a *Activities) allowPool(p config.Pool) error {
	c, ok := a.Config.Pool(p.Name)
	if !ok {
		return notAllowed("pool", "no pool named %q in the configuration (known: %v)", p.Name, a.Config.PoolNames())
	}
	for _, f := range []struct {
		field string
		same  bool
	}{
		{"pool.target", p.Target == c.Target},
		{"pool.instance_id", p.InstanceID == c.InstanceID},
		{"pool.availability_zone", p.AvailabilityZone == c.AvailabilityZone},
		{"pool.aws", p.AWS == c.AWS},
		{"pool.luks", p.LUKS == c.LUKS},
		{"pool.device_dir", p.DeviceDir == c.DeviceDir},
		{"pool.tags", fmt.Sprint(p.Tags) == fmt.Sprint(c.Tags)},
		{"pool.parallel_vdevs", p.ParallelVdevs <= c.ParallelVdevs},
	} {
		if !f.same {
			return notAllowed(f.field, "differs from pool %s in the configuration", p.Name)
		}
	}
	return nil
}

// allowVolumeSpec checks a volume a pool step creates or grows to against
// the configured pool's grow caps (config.Pool.GrowRefusal).
func (a *Activities) allowVolumeSpec(pool string, spec poolplan.VolumeSpec) error {
	c, ok := a.Config.Pool(pool)
	if !ok {
		return notAllowed("pool", "no pool named %q in the configuration (known: %v)", pool, a.Config.PoolNames())
	}
	if field, why := c.GrowRefusal(spec); field != "" {
		return notAllowed(field, "%s", why)
	}
	return nil
}

// allowArchive returns the configured archive settings of dataset.
func (a *Activities) allowArchive(dataset string) (config.ArchiveDataset, error) {
	d, ok := a.Config.ArchiveDatasetFor(dataset)
	if !ok {
		return d, notAllowed("dataset", "%s is not an archived dataset in the configuration (known: %v)", dataset, a.Config.ArchiveDatasetNames())
	}
	return d, nil
}

// allowArchiveStream checks an archive stream's class and raw flag too:
// an input must not store a dataset in another class or decrypted.
func (a *Activities) allowArchiveStream(dataset string, class string, raw bool) error {
	d, err := a.allowArchive(dataset)
	if err != nil {
		return err
	}
	if class != "" && class != d.Class {
		return notAllowed("class", "%s is archived in %s by the configuration", dataset, d.Class)
	}
	if raw != d.Raw {
		return notAllowed("raw", "the configuration archives %s with raw: %t", dataset, d.Raw)
	}
	return nil
}

// allowArchiveLimits checks an archive run's safety limits against the
// config, all at once (PlanArchive does, before anything is sent).
func (a *Activities) allowArchiveLimits(d config.ArchiveDataset, l contract.ArchiveLimits) error {
	if err := a.allowSanity(d, l.SanityMinPercent, l.AcceptSmaller); err != nil {
		return err
	}
	if err := a.allowForce(l.Force); err != nil {
		return err
	}
	return a.allowDeleteLimits(l.MaxDeleteCycles, l.MaxDeleteBytes)
}

// allowCycle: a run may start new cycles less often than the config says,
// never more often (each new verified cycle lets rotation delete older
// ones, and their snapshots with them).
func (a *Activities) allowCycle(d config.ArchiveDataset, period time.Duration) error {
	if period < d.Cycle.Duration() {
		return notAllowed("cycle", "the configuration starts a new cycle of %s every %s", d.Dataset, d.Cycle)
	}
	return nil
}

// allowSanity: the sanity check of a new full may be stricter than the
// config's, and waived (accept_smaller) only where the config allows it.
func (a *Activities) allowSanity(d config.ArchiveDataset, minPercent float64, acceptSmaller bool) error {
	cfg := config.DefaultSanityMinPercent
	if d.SanityMinPercent != nil {
		cfg = *d.SanityMinPercent
	}
	if minPercent < cfg {
		return notAllowed("sanity_min_percent", "the configuration checks every new full of %s against %g%% of the previous one", d.Dataset, cfg)
	}
	if acceptSmaller && !a.Config.Archive.AllowAcceptSmaller {
		return notAllowed("accept_smaller", "archive.allow_accept_smaller is not set in the configuration")
	}
	return nil
}

// allowForce: deleting before the minimum storage duration only where the
// config allows it.
func (a *Activities) allowForce(force bool) error {
	if force && !a.Config.Archive.AllowForce {
		return notAllowed("force", "archive.allow_force is not set in the configuration")
	}
	return nil
}

// allowDeleteLimits: the approval limits of a rotation may be lower than
// the config's, never higher or off.
func (a *Activities) allowDeleteLimits(cycles int, bytes int64) error {
	ar := a.Config.Archive
	cfgCycles, cfgBytes := config.DefaultMaxDeleteCycles, int64(-1)
	if ar.MaxDeleteCycles != nil {
		cfgCycles = *ar.MaxDeleteCycles
	}
	if ar.MaxDeleteBytes != nil {
		cfgBytes = *ar.MaxDeleteBytes
	}
	if looser(float64(cycles), float64(cfgCycles)) {
		return notAllowed("max_delete_cycles", "the configuration's limit is %d (archive.max_delete_cycles)", cfgCycles)
	}
	if looser(float64(bytes), float64(cfgBytes)) {
		return notAllowed("max_delete_bytes", "the configuration's limit is %d (archive.max_delete_bytes)", cfgBytes)
	}
	return nil
}

// workerNow is t, or the worker's clock if t is later: a request's time
// can hold a deletion back, never bring a minimum storage duration's end
// forward.
func workerNow(t time.Time) time.Time {
	if now := time.Now().UTC(); t.After(now) {
		return now
	}
	return t
}

// allowRetrieval checks a retrieval's tier and days against the config's
// caps (archive.max_restore_tier, archive.max_restore_days): an input
// chooses how fast and how long within what the operator pays for.
func (a *Activities) allowRetrieval(tier objstore.Tier, days int) error {
	ar := a.Config.Archive
	maxTier, maxDays := ar.MaxRestoreTier, ar.MaxRestoreDays
	if maxTier == "" {
		maxTier = "Standard"
	}
	if maxDays == 0 {
		maxDays = config.DefaultMaxRestoreDays
	}
	if tier != "" && config.TierRank(string(tier)) > config.TierRank(maxTier) {
		return notAllowed("tier", "the configuration allows retrievals up to %s (archive.max_restore_tier)", maxTier)
	}
	if days > maxDays {
		return notAllowed("days", "the configuration keeps restored copies readable for at most %d days (archive.max_restore_days)", maxDays)
	}
	return nil
}

// allowStoreKeys checks that every key is an object of this worker's
// archive (under archive.store.prefix): a retrieval request restores
// nothing else in the bucket or vault.
func (a *Activities) allowStoreKeys(keys []string) error {
	prefix := a.archivePrefix() + "/"
	for i, k := range keys {
		if !strings.HasPrefix(k, prefix) || strings.Contains(k, "..") {
			return notAllowed(fmt.Sprintf("keys[%d]", i), "%q is not under the archive's prefix %s in the configuration", k, prefix)
		}
	}
	return nil
}

// allowLaunchToken checks, before a release by client token cancels or
// terminates anything, that every spot request and instance carrying the
// token holds this worker's launch record for target made with that very
// token (launchedBy): a token is only a request's word, and another
// launch's token must not end that launch.
func (a *Activities) allowLaunchToken(ctx context.Context, c *ec2.Client, t config.Target, target, token string) error {
	found, err := c.LaunchResources(ctx, token)
	if err != nil {
		return ec2Err(err)
	}
	for _, r := range found {
		if _, err := launchedBy(t, target, ec2types.Instance{ID: r.ID, Tags: r.Tags}); err != nil {
			return notAllowed("client_token", "%s carries the token but not this worker's launch record for target %s", r.ID, target)
		}
		if rec, _, _ := strings.Cut(r.Tags[TagLaunch], " "); rec != token {
			return notAllowed("client_token", "%s was launched for target %s with another token", r.ID, target)
		}
	}
	return nil
}

// LaunchRecord is the launch record (tag TagLaunch) this worker gives a
// launch of target with token and the injected public host key: tests use
// it to stand in for a launch that died before tagging what it made.
func LaunchRecord(t config.Target, target, token, hostKey string) (string, error) {
	return launchTag(t, target, token, hostKey)
}

// allowIdentity checks a key name a request asks the worker to read: only
// the archive identities the config names. Any other key in the key source
// (a pool key, another host's identity) is never read on request.
func (a *Activities) allowIdentity(name string) error {
	ar := a.Config.Archive
	if name != "" && (name == ar.HostIdentity || name == ar.RestoreIdentity) {
		return nil
	}
	return notAllowed("identity", "key %q is not an archive identity in the configuration (archive.host_identity, archive.restore_identity)", name)
}

// allowPolicy returns the configured snapshot policy of dataset.
func (a *Activities) allowPolicy(dataset string) (config.Policy, error) {
	p, ok := a.Config.PolicyFor(dataset)
	if !ok {
		return p, notAllowed("dataset", "no snapshot policy for %s in the configuration", dataset)
	}
	return p, nil
}

// allowPrune checks a prune plan's request against the dataset's
// configured policy: the same rules, no more foreign snapshots, no looser
// approval limits, every configured protection kept.
func (a *Activities) allowPrune(req contract.PlanRequest) error {
	p, err := a.allowPolicy(req.Dataset.String())
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(req.Policy.WithDefaults(), p.Policy.WithDefaults()) {
		return notAllowed("policy", "it differs from the policy for %s in the configuration (after changing the config, run zcloud policy apply)", req.Dataset)
	}
	if req.IncludeForeign && !p.IncludeForeign {
		return notAllowed("include_foreign", "the configuration prunes only zcloud's snapshots of %s", req.Dataset)
	}
	if looser(float64(req.MaxDestroyCount), float64(*p.MaxDestroyCount)) {
		return notAllowed("max_destroy_count", "the configuration's limit for %s is %d", req.Dataset, *p.MaxDestroyCount)
	}
	if looser(req.MaxDestroyPercent, *p.MaxDestroyPercent) {
		return notAllowed("max_destroy_percent", "the configuration's limit for %s is %g", req.Dataset, *p.MaxDestroyPercent)
	}
	for _, pr := range p.Protect {
		if !slices.ContainsFunc(req.Protected, func(r retention.Protection) bool { return r.Name == pr.Snapshot }) {
			return notAllowed("protected", "the configuration protects %s@%s", req.Dataset, pr.Snapshot)
		}
	}
	return nil
}

// looser says whether limit req allows more than cfg (-1: no limit).
func looser(req, cfg float64) bool {
	return cfg >= 0 && (req < 0 || req > cfg)
}

// allowSnapshot checks that the config snapshots ds: a replication
// source, a policy's dataset or an archived dataset.
func (a *Activities) allowSnapshot(ds string) error {
	_, policy := a.Config.PolicyFor(ds)
	_, archived := a.Config.ArchiveDatasetFor(ds)
	replicated := slices.ContainsFunc(a.Config.Replications, func(r config.Replication) bool { return r.Source == ds })
	if policy || archived || replicated {
		return nil
	}
	return notAllowed("dataset", "the configuration neither replicates, archives nor has a policy for %s", ds)
}

// allowStaging checks a staging request: the source has a staging: entry
// and dataset is its staging dataset (the staging engine writes there).
func (a *Activities) allowStaging(source, dataset string) error {
	job, ok := a.Config.StagingFor(source)
	if !ok {
		return notAllowed("source", "%s has no staging: entry in the configuration", source)
	}
	if dataset != job.Dataset {
		return notAllowed("dataset", "the staging dataset of %s is %s in the configuration", source, job.Dataset)
	}
	return nil
}

// allowStagingSnapshot checks that ds is a configured staging dataset.
func (a *Activities) allowStagingSnapshot(ds string) error {
	for _, s := range a.Config.Staging {
		if s.Dataset == ds {
			return nil
		}
	}
	return notAllowed("snapshot", "%s is not a staging dataset in the configuration", ds)
}
