package activities

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"zcloud/cloud/awsclient"
	"zcloud/cloud/ec2"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// Tags zcloud puts on every pool volume. A crashed workflow finds what it
// created by these (and by ec2.TagClientToken); destroy deletes only
// volumes whose TagPool matches.
const (
	TagPool          = "zcloud:pool"
	TagSlot          = "zcloud:slot"          // "v1/d2": vdev 1, device 2
	TagReplaces      = "zcloud:replaces"      // the volume a rolling replace put this one in place of
	TagModifications = "zcloud:modifications" // recent ModifyVolume starts, for the 4-per-24-h rule
)

const nvmePrefix = "nvme-Amazon_Elastic_Block_Store_"

// ebsDevice is where the instance shows volumeID: <device_dir>/nvme-Amazon_Elastic_Block_Store_vol…
func ebsDevice(p config.Pool, volumeID string) (zfsname.Device, error) {
	return zfsname.ParseDevice(ec2.NVMeDevicePath(volumeID, p.DeviceDir))
}

// mapperName is the LUKS mapping of volumeID: zc-vol0123….
func mapperName(volumeID string) (zfsname.MapperName, error) {
	return zfsname.ParseMapperName("zc-" + strings.ReplaceAll(volumeID, "-", ""))
}

// poolDevice is the device zpool uses for volumeID: the LUKS mapping when
// LUKS is on, else the by-id path.
func poolDevice(p config.Pool, volumeID string) (zfsname.Device, error) {
	if p.LUKS.Enabled {
		m, err := mapperName(volumeID)
		if err != nil {
			return zfsname.Device{}, err
		}
		return m.Device(), nil
	}
	return ebsDevice(p, volumeID)
}

// importDir is where `zpool import -d` finds the pool's devices.
func importDir(p config.Pool) zfsname.Device {
	dir := p.DeviceDir
	if p.LUKS.Enabled {
		dir = "/dev/mapper"
	}
	d, _ := zfsname.ParseDevice(dir)
	return d
}

// VolumeIDFromDevice reads the EBS volume id out of a zpool device name:
// a by-id path (nvme-Amazon_Elastic_Block_Store_vol0abc[-part1]) or a LUKS
// mapping (zc-vol0abc). The dash AWS puts after "vol" is restored.
func VolumeIDFromDevice(dev string) (string, bool) {
	b := path.Base(dev)
	if i := strings.Index(b, "-part"); i > 0 {
		b = b[:i]
	}
	switch {
	case strings.HasPrefix(b, nvmePrefix+"vol"):
		b = strings.TrimPrefix(b, nvmePrefix)
	case strings.HasPrefix(b, "zc-vol"):
		b = strings.TrimPrefix(b, "zc-")
	default:
		return "", false
	}
	rest := strings.TrimPrefix(b, "vol")
	if rest == "" || strings.Trim(rest, "0123456789abcdef") != "" {
		return "", false
	}
	return "vol-" + rest, true
}

// ec2Client builds the EBS client for a pool; progress lines of its waiters
// become heartbeats.
func (a *Activities) ec2Client(ctx context.Context, p config.Pool, hb *beat) (*ec2.Client, error) {
	if err := a.allowPool(p); err != nil {
		return nil, err
	}
	return newEC2(ctx, "pool "+p.Name, awsclient.Config(p.AWS), min(p.PollInterval, 2*time.Second), func(progress string) {
		if hb != nil {
			hb.set(progress)
		}
	})
}

// newEC2 is the one way activities build an EC2 client (through
// cloud/awsclient); onPoll receives its waiters' progress lines.
func newEC2(ctx context.Context, owner string, cfg awsclient.Config, poll time.Duration, onPoll func(string)) (*ec2.Client, error) {
	api, err := awsclient.EC2(ctx, cfg)
	if err != nil {
		return nil, permanent(contract.ErrTypeConfig, fmt.Errorf("%s: %w", owner, err))
	}
	opts := ec2.Options{OnPoll: func(_ context.Context, progress string) { onPoll(progress) }}
	if poll > 0 {
		opts.PollInterval = poll
	}
	return ec2.New(api, opts), nil
}

// ec2Err is the one mapping of cloud/ec2 failures to Temporal errors: a
// permanent *ec2.Error (bad AMI, subnet, permissions, a volume attached
// elsewhere) becomes a non-retryable application error with the EC2 code
// as its type; anything else is retried.
func ec2Err(err error) error {
	if err == nil {
		return nil
	}
	var e *ec2.Error
	if errors.As(err, &e) && !e.Retryable() {
		typ := e.Code
		if typ == "" {
			typ = contract.ErrTypeEC2
		}
		return permanent(typ, err)
	}
	return err
}

// zpoolOn returns a Zpool over SSH to the pool's target, with its
// capabilities detected; call close when done.
// poolTarget is an SSH runner to the pool's host, once the pool's
// settings are the config's (allowPool).
func (a *Activities) poolTarget(ctx context.Context, p config.Pool) (config.Target, *zfsexec.SSH, error) {
	if err := a.allowPool(p); err != nil {
		return config.Target{}, nil, err
	}
	return a.target(ctx, p.Target)
}

func (a *Activities) zpoolOn(ctx context.Context, p config.Pool) (zfsexec.Zpool, zfsexec.Runner, func(), error) {
	_, r, err := a.poolTarget(ctx, p)
	if err != nil {
		return zfsexec.Zpool{}, nil, nil, err
	}
	caps, err := a.capabilities(ctx, r)
	if err != nil {
		r.Close()
		return zfsexec.Zpool{}, nil, nil, classify(fmt.Errorf("pool %s on %s: detect ZFS: %w", p.Name, p.Target, err))
	}
	return zfsexec.Zpool{R: r, Caps: caps}, r, func() { r.Close() }, nil
}

// openPool validates the pool's name and returns the zpool commands on its
// host; done closes the connection.
func (a *Activities) openPool(ctx context.Context, p config.Pool) (zfsexec.Zpool, zfsname.Pool, func(), error) {
	name, err := poolName(p)
	if err != nil {
		return zfsexec.Zpool{}, name, nil, err
	}
	zp, _, done, err := a.zpoolOn(ctx, p)
	return zp, name, done, err
}

func poolName(p config.Pool) (zfsname.Pool, error) {
	n, err := zfsname.ParsePool(p.Name)
	if err != nil {
		return n, permanent(contract.ErrTypeInvalidName, err)
	}
	return n, nil
}

// poolStatus returns the pool's status, or ok=false if it is not imported.
func poolStatus(ctx context.Context, zp zfsexec.Zpool, p zfsname.Pool) (zfsexec.PoolStatus, bool, error) {
	st, err := zp.Status(ctx, p)
	if errors.Is(err, zfsexec.ErrNoSuchPool) {
		return st, false, nil
	}
	return st, err == nil, err
}

// importPool is the one import of pools and sessions: it imports the pool
// unless it is imported already (imported says whether this call did).
// A pool its last host did not export (an instance that crashed or was
// interrupted) is taken with -f: the caller attached its volumes here.
func (a *Activities) importPool(ctx context.Context, zp zfsexec.Zpool, p zfsname.Pool, o zfsexec.ImportOptions) (imported bool, err error) {
	if _, ok, err := poolStatus(ctx, zp, p); err != nil || ok {
		return false, err
	}
	err = zp.Import(ctx, p, o)
	if errors.Is(err, zfsexec.ErrPoolInUseElsewhere) {
		a.Log.Warn("pool was not exported by its last host; importing with -f", zap.String("pool", p.String()), zap.String("host", zp.R.Host()))
		o.Force = true
		err = zp.Import(ctx, p, o)
	}
	return err == nil, err
}

// exportPool is the one export: it exports the pool if it is imported
// (exported says whether this call did).
func exportPool(ctx context.Context, zp zfsexec.Zpool, p zfsname.Pool, force bool) (exported bool, err error) {
	if _, ok, err := poolStatus(ctx, zp, p); err != nil || !ok {
		return false, err
	}
	return true, zp.Export(ctx, p, force)
}

// Leaf is one device of a pool's config tree.
type Leaf struct {
	Device    string `json:"device"`
	VolumeID  string `json:"volume_id,omitempty"` // "" for a device that is not an EBS volume
	State     string `json:"state"`
	Replacing bool   `json:"replacing,omitempty"` // under a replacing-N vdev
}

// topVdevs returns each top-level data vdev's leaves, in zpool order
// (logs, cache and spares are left out).
func topVdevs(st zfsexec.PoolStatus) [][]Leaf {
	if len(st.Vdevs) == 0 {
		return nil
	}
	var out [][]Leaf
	for _, top := range st.Vdevs[0].Children {
		var leaves []Leaf
		var walk func(v *zfsexec.Vdev, replacing bool)
		walk = func(v *zfsexec.Vdev, replacing bool) {
			if len(v.Children) == 0 {
				id, _ := VolumeIDFromDevice(v.Name)
				leaves = append(leaves, Leaf{Device: v.Name, VolumeID: id, State: v.State, Replacing: replacing})
				return
			}
			r := replacing || strings.HasPrefix(v.Name, "replacing")
			for _, c := range v.Children {
				walk(c, r)
			}
		}
		walk(top, false)
		out = append(out, leaves)
	}
	return out
}

// hasVolume reports whether volumeID is a device of the pool (any state).
func hasVolume(st zfsexec.PoolStatus, volumeID string) bool {
	for _, vd := range topVdevs(st) {
		for _, l := range vd {
			if l.VolumeID == volumeID {
				return true
			}
		}
	}
	return false
}

// resilvering reports a running resilver or a replacing vdev.
func resilvering(st zfsexec.PoolStatus) bool {
	if st.Scan.Function == zfsexec.ScanResilver && st.Scan.InProgress() {
		return true
	}
	for _, vd := range topVdevs(st) {
		for _, l := range vd {
			if l.Replacing {
				return true
			}
		}
	}
	return false
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Modification history in a tag: "2026-03-01T00:00:00Z=20 …", newest last.

const maxModTagEntries = 8

func parseModTag(volumeID, s string) []poolplan.Modification {
	var out []poolplan.Modification
	for _, f := range strings.Fields(s) {
		ts, size, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			continue
		}
		var n int64
		if _, err := fmt.Sscan(size, &n); err != nil {
			continue
		}
		out = append(out, poolplan.Modification{VolumeID: volumeID, Start: t.UTC(), State: poolplan.ModCompleted, TargetSizeGiB: n})
	}
	return out
}

func formatModTag(ms []poolplan.Modification) string {
	ms = append([]poolplan.Modification(nil), ms...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Start.Before(ms[j].Start) })
	if len(ms) > maxModTagEntries {
		ms = ms[len(ms)-maxModTagEntries:]
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s=%d", m.Start.UTC().Format(time.RFC3339), m.TargetSizeGiB)
	}
	return strings.Join(parts, " ")
}

// sameModification matches records of one modification made by different
// clocks (the workflow's and EBS's).
func sameModification(a, b poolplan.Modification) bool {
	d := a.Start.Sub(b.Start)
	return a.VolumeID == b.VolumeID && a.TargetSizeGiB == b.TargetSizeGiB && d < 5*time.Minute && d > -5*time.Minute
}

// mergeModifications adds b's entries missing from a; an entry present in
// both takes b's state (EBS's own report wins over the tag).
func mergeModifications(a, b []poolplan.Modification) []poolplan.Modification {
	out := append([]poolplan.Modification(nil), a...)
	for _, m := range b {
		found := false
		for i := range out {
			if sameModification(out[i], m) {
				out[i].State = m.State
				found = true
			}
		}
		if !found {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// importCandidates lists importable pools in the pool's device directory.
// zfs-fuse exits 1 without a word when it finds none; that is an empty list.
func importCandidates(ctx context.Context, zp zfsexec.Zpool, p config.Pool) ([]zfsexec.ImportCandidate, error) {
	cs, err := zp.ImportCandidates(ctx, zfsexec.ImportOptions{Dirs: []zfsname.Device{importDir(p)}})
	var ee *zfsexec.ExitError
	if errors.As(err, &ee) && ee.Code == 1 && strings.TrimSpace(ee.Stderr) == "" {
		return nil, nil
	}
	return cs, err
}
