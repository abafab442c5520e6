package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"zcloud/cloud/ec2"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

func asLimit(err error, le **ec2.ModifyLimitError) bool { return errors.As(err, le) }

func ec2Code(err error) string {
	var e *ec2.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// PoolLUKSOpen LUKS-formats the volume's device if it carries no LUKS
// header yet (only new, blank volumes reach this step) and opens it as
// /dev/mapper/zc-vol…, unless it is open already. The key is read from the
// key source here and sent on stdin only.
func (a *Activities) PoolLUKSOpen(ctx context.Context, req contract.PoolDeviceRequest) (string, error) {
	hb := startBeat(ctx, "luks open "+req.VolumeID)
	defer hb.stop()
	if !req.Pool.LUKS.Enabled {
		return "", permanent(contract.ErrTypeConfig, fmt.Errorf("pool %s does not use LUKS", req.Pool.Name))
	}
	dev, err := ebsDevice(req.Pool, req.VolumeID)
	if err != nil {
		return "", permanent(contract.ErrTypeInvalidName, err)
	}
	m, err := mapperName(req.VolumeID)
	if err != nil {
		return "", permanent(contract.ErrTypeInvalidName, err)
	}
	_, r, err := a.poolTarget(ctx, req.Pool)
	if err != nil {
		return "", err
	}
	defer r.Close()
	if open, err := (zfsexec.Cryptsetup{R: r}).IsOpen(ctx, m); err != nil {
		return "", classify(err)
	} else if open {
		return m.Device().String(), nil
	}
	key, err := a.Keys.Get(ctx, req.Pool.LUKS.Key)
	if err != nil {
		return "", permanent(contract.ErrTypeConfig, fmt.Errorf("pool %s: LUKS key: %w", req.Pool.Name, err))
	}
	defer clear(key)
	cs := zfsexec.Cryptsetup{R: r}
	isLuks, err := cs.IsLuks(ctx, dev)
	if err != nil {
		return "", classify(err)
	}
	if !isLuks {
		hb.set("luksFormat " + dev.String())
		if err := cs.LuksFormat(ctx, dev, key); err != nil {
			return "", classify(withoutKey(err, key))
		}
	}
	hb.set("open " + dev.String())
	if err := cs.Open(ctx, dev, m, key); err != nil {
		err = withoutKey(err, key)
		if errors.Is(err, zfsexec.ErrKeyIncorrect) {
			return "", permanent(contract.ErrTypeKeyIncorrect, fmt.Errorf("LUKS key %q does not open %s", req.Pool.LUKS.Key, dev))
		}
		return "", classify(err)
	}
	return m.Device().String(), nil
}

// PoolLUKSClose closes the volume's LUKS mapping if it is open.
func (a *Activities) PoolLUKSClose(ctx context.Context, req contract.PoolDeviceRequest) error {
	if !req.Pool.LUKS.Enabled {
		return nil
	}
	m, err := mapperName(req.VolumeID)
	if err != nil {
		return permanent(contract.ErrTypeInvalidName, err)
	}
	_, r, err := a.poolTarget(ctx, req.Pool)
	if err != nil {
		return err
	}
	defer r.Close()
	cs := zfsexec.Cryptsetup{R: r}
	if open, err := cs.IsOpen(ctx, m); err != nil || !open {
		return classify(err)
	}
	return classify(cs.Close(ctx, m))
}

// PoolZpoolCreate runs zpool create with the layout (ashift=12,
// autoexpand=on). A pool of that name already imported or importable with
// exactly these devices (an earlier attempt made it) is a success; one with
// other devices is refused.
func (a *Activities) PoolZpoolCreate(ctx context.Context, req contract.PoolCreateRequest) error {
	hb := startBeat(ctx, "zpool create")
	defer hb.stop()
	p := req.Pool
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return err
	}
	defer done()
	var want []string
	var devs []zfsname.Device
	for _, vd := range req.Vdevs {
		for _, id := range vd {
			want = append(want, id)
			d, err := poolDevice(p, id)
			if err != nil {
				return permanent(contract.ErrTypeInvalidName, err)
			}
			devs = append(devs, d)
		}
	}
	same := func(st zfsexec.PoolStatus) error {
		var got []string
		for _, vd := range topVdevs(st) {
			for _, l := range vd {
				got = append(got, l.VolumeID)
			}
		}
		if !slices.Equal(got, want) {
			return permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("a pool named %s already exists with devices %v, not the pool's volumes %v", p.Name, got, want))
		}
		return nil
	}
	st, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		return classify(err)
	}
	if imported {
		return same(st)
	}
	cands, err := importCandidates(ctx, zp, p)
	if err != nil {
		return classify(err)
	}
	for _, c := range cands {
		if c.Name == p.Name {
			return same(c)
		}
	}
	layout := zfsexec.Layout{Redundancy: zfsexec.Redundancy(p.Layout.Redundancy), Width: p.Layout.Width}
	if err := zp.Create(ctx, name, layout, devs, zfsexec.PoolCreateOptions{Ashift: 12}); err != nil {
		return classify(err)
	}
	return nil
}

// PoolImport imports the pool from its device directory unless it is
// imported already; Imported says whether this call imported it.
func (a *Activities) PoolImport(ctx context.Context, p config.Pool) (bool, error) {
	hb := startBeat(ctx, "import")
	defer hb.stop()
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return false, err
	}
	defer done()
	imported, err := a.importPool(ctx, zp, name, zfsexec.ImportOptions{Dirs: []zfsname.Device{importDir(p)}})
	if errors.Is(err, zfsexec.ErrNoSuchPool) {
		return false, permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s is neither imported nor importable from %s", p.Name, importDir(p)))
	}
	return imported, classify(err)
}

// PoolExport exports the pool if it is imported.
func (a *Activities) PoolExport(ctx context.Context, p config.Pool) error {
	hb := startBeat(ctx, "export")
	defer hb.stop()
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return err
	}
	defer done()
	_, err = exportPool(ctx, zp, name, false)
	return classify(err)
}

// PoolInspect reads the imported pool's tree (zpool status), maps each
// device to its EBS volume, and describes the volumes (type, size, recent
// modifications).
func (a *Activities) PoolInspect(ctx context.Context, p config.Pool) (contract.PoolState, error) {
	hb := startBeat(ctx, "inspect")
	defer hb.stop()
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return contract.PoolState{}, err
	}
	defer done()
	st, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		return contract.PoolState{}, classify(err)
	}
	if !imported {
		return contract.PoolState{}, permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s is not imported on %s", p.Name, p.Target))
	}
	info, err := zp.List(ctx, name)
	if err != nil {
		return contract.PoolState{}, classify(err)
	}
	out := contract.PoolState{Name: p.Name, Health: st.State, Healthy: st.Healthy(), SizeBytes: info.Size, Resilvering: resilvering(st), Scan: st.Scan.Raw}
	c, err := a.ec2Client(ctx, p, hb)
	if err != nil {
		return contract.PoolState{}, err
	}
	for _, vd := range topVdevs(st) {
		var row []contract.PoolVolume
		for _, l := range vd {
			if l.VolumeID == "" {
				out.Foreign = append(out.Foreign, l.Device)
				continue
			}
			v, err := c.DescribeVolume(ctx, l.VolumeID)
			if err != nil {
				return contract.PoolState{}, ec2Err(err)
			}
			pv := contract.PoolVolume{Volume: poolplan.Volume{ID: v.ID, Type: v.Type, SizeGiB: v.SizeGiB}, Device: l.Device, State: l.State, Slot: v.Tags[TagSlot]}
			hist := parseModTag(v.ID, v.Tags[TagModifications])
			if m, err := c.LatestModification(ctx, v.ID); err == nil && !m.Start.IsZero() {
				hist = mergeModifications(hist, []poolplan.Modification{m.Record()})
			} else if err != nil && !ec2.IsNotFound(err) {
				return contract.PoolState{}, ec2Err(err)
			}
			pv.Modifications = hist
			row = append(row, pv)
		}
		out.Vdevs = append(out.Vdevs, row)
	}
	return out, nil
}

// PoolReplace runs zpool replace old new. If the new device is already in
// the pool (an earlier attempt ran it), nothing is redone.
func (a *Activities) PoolReplace(ctx context.Context, req contract.PoolReplaceRequest) error {
	hb := startBeat(ctx, "zpool replace "+req.OldVolumeID+" "+req.NewVolumeID)
	defer hb.stop()
	p := req.Pool
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return err
	}
	defer done()
	st, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		return classify(err)
	}
	if !imported {
		return permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s is not imported", p.Name))
	}
	if hasVolume(st, req.NewVolumeID) {
		return nil // replaced (or replacing) already
	}
	if !hasVolume(st, req.OldVolumeID) {
		return permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("pool %s has neither %s nor %s", p.Name, req.OldVolumeID, req.NewVolumeID))
	}
	oldDev, err := a.memberDevice(st, req.OldVolumeID)
	if err != nil {
		return err
	}
	newDev, err := poolDevice(p, req.NewVolumeID)
	if err != nil {
		return permanent(contract.ErrTypeInvalidName, err)
	}
	return classify(zp.Replace(ctx, name, oldDev, newDev, false))
}

// memberDevice is the device name zpool status shows for volumeID, as an
// argument for zpool (status may print a short name; use the full path
// when it is one).
func (a *Activities) memberDevice(st zfsexec.PoolStatus, volumeID string) (zfsname.Device, error) {
	for _, vd := range topVdevs(st) {
		for _, l := range vd {
			if l.VolumeID != volumeID {
				continue
			}
			name := l.Device
			if !strings.HasPrefix(name, "/") {
				name = "/dev/disk/by-id/" + name
				if strings.HasPrefix(l.Device, "zc-") {
					name = "/dev/mapper/" + l.Device
				}
			}
			d, err := zfsname.ParseDevice(name)
			if err != nil {
				return d, permanent(contract.ErrTypeInvalidName, err)
			}
			return d, nil
		}
	}
	return zfsname.Device{}, permanent(contract.ErrTypeNotFound, fmt.Errorf("%s is not a device of the pool", volumeID))
}

// PoolWaitResilver polls zpool status (heartbeating the progress) until no
// resilver runs and no replacing vdev is left, then checks the new device
// is an ONLINE member and the old one is gone.
func (a *Activities) PoolWaitResilver(ctx context.Context, req contract.PoolReplaceRequest) (contract.ResilverReport, error) {
	begin := time.Now()
	hb := startBeat(ctx, "resilver "+req.NewVolumeID)
	defer hb.stop()
	if err := a.Gate.Reached(ctx, "resilver-wait"); err != nil { // test-only
		return contract.ResilverReport{}, err
	}
	p := req.Pool
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return contract.ResilverReport{}, err
	}
	defer done()
	for {
		st, imported, err := poolStatus(ctx, zp, name)
		if err != nil {
			return contract.ResilverReport{}, classify(err)
		}
		if !imported {
			return contract.ResilverReport{}, permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s is not imported", p.Name))
		}
		if !hasVolume(st, req.NewVolumeID) {
			return contract.ResilverReport{}, permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("%s is not a device of pool %s: was zpool replace run?", req.NewVolumeID, p.Name))
		}
		if !resilvering(st) {
			return contract.ResilverReport{Resilvered: st.Scan.Repaired, Seconds: time.Since(begin).Seconds(), Scan: st.Scan.Raw}, nil
		}
		hb.set(fmt.Sprintf("%.1f%% done", st.Scan.Percent))
		hb.setBytes(int64(st.Scan.Repaired), 0)
		if err := sleepCtx(ctx, p.PollInterval); err != nil {
			return contract.ResilverReport{}, err
		}
	}
}

// PoolVerifyReplaced checks the pool after a replacement: ONLINE with no
// errors, no resilver running, the new device an ONLINE member, the old one
// gone. Only after this does the old volume get detached and deleted. A
// resilver running now was started by another vdev's replacement (with
// parallel vdevs a replace restarts the pool-wide resilver): it waits for
// that to end (heartbeating) instead of failing the grow.
func (a *Activities) PoolVerifyReplaced(ctx context.Context, req contract.PoolReplaceRequest) error {
	hb := startBeat(ctx, "verify "+req.NewVolumeID)
	defer hb.stop()
	p := req.Pool
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return err
	}
	defer done()
	st, imported, err := poolStatus(ctx, zp, name)
	for err == nil && imported && resilvering(st) {
		hb.set(fmt.Sprintf("waiting for a resilver (%.1f%% done) before verifying", st.Scan.Percent))
		if err := sleepCtx(ctx, p.PollInterval); err != nil {
			return err
		}
		st, imported, err = poolStatus(ctx, zp, name)
	}
	if err != nil {
		return classify(err)
	}
	var problems []string
	if !imported {
		problems = append(problems, "not imported")
	} else {
		if !st.Healthy() {
			problems = append(problems, fmt.Sprintf("pool is %s and not healthy (%s)", st.State, st.Errors))
		}
		if resilvering(st) {
			problems = append(problems, "a resilver is still running")
		}
		found := false
		for _, vd := range topVdevs(st) {
			for _, l := range vd {
				if l.VolumeID == req.NewVolumeID {
					found = l.State == "ONLINE"
				}
				if req.OldVolumeID != "" && l.VolumeID == req.OldVolumeID {
					problems = append(problems, "old device "+req.OldVolumeID+" is still in the pool")
				}
			}
		}
		if !found {
			problems = append(problems, "new device "+req.NewVolumeID+" is not an ONLINE member")
		}
	}
	if len(problems) > 0 {
		return permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("pool %s after replacing %s with %s: %s; the old volume is kept",
			p.Name, req.OldVolumeID, req.NewVolumeID, strings.Join(problems, "; ")))
	}
	if req.OldVolumeID == "" {
		return nil
	}
	// The old volume is no longer the pool's: from now on no session
	// attaches it, even if the grow stops before deleting it.
	c, err := a.ec2Client(ctx, p, hb)
	if err != nil {
		return err
	}
	if err := c.TagVolume(ctx, req.OldVolumeID, map[string]string{TagState: StateRetiring}); err != nil && !ec2.IsNotFound(err) {
		return ec2Err(err)
	}
	return nil
}

// PoolExpand makes ZFS use the devices' new size: `zpool online -e` where
// this ZFS supports it; elsewhere (zfs-fuse) the pool is exported and
// imported again, which with autoexpand=on reopens the devices at their
// new size.
func (a *Activities) PoolExpand(ctx context.Context, req contract.PoolExpandRequest) (contract.PoolExpandResult, error) {
	hb := startBeat(ctx, "expand")
	defer hb.stop()
	p := req.Pool
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return contract.PoolExpandResult{}, err
	}
	defer done()
	st, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		return contract.PoolExpandResult{}, classify(err)
	}
	if !imported {
		return contract.PoolExpandResult{}, permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s is not imported", p.Name))
	}
	method := "zpool online -e"
	if zp.Caps.OnlineExpand {
		var devs []zfsname.Device
		for _, id := range req.VolumeIDs {
			d, err := a.memberDevice(st, id)
			if err != nil {
				return contract.PoolExpandResult{}, err
			}
			devs = append(devs, d)
		}
		if len(devs) > 0 {
			if err := zp.OnlineExpand(ctx, name, devs...); err != nil {
				return contract.PoolExpandResult{}, classify(err)
			}
		}
	} else {
		method = "export and import (autoexpand=on)"
		if err := zp.Export(ctx, name, false); err != nil {
			return contract.PoolExpandResult{}, classify(err)
		}
		if err := zp.Import(ctx, name, zfsexec.ImportOptions{Dirs: []zfsname.Device{importDir(p)}}); err != nil {
			return contract.PoolExpandResult{}, classify(err)
		}
	}
	info, err := zp.List(ctx, name)
	if err != nil {
		return contract.PoolExpandResult{}, classify(err)
	}
	return contract.PoolExpandResult{SizeBytes: info.Size, Method: method}, nil
}

type scrubHeartbeat struct {
	contract.Progress

	Started bool `json:"started"`
}

// PoolScrub starts a scrub (or joins one running) and waits for it,
// heartbeating progress; a retry after a crash finds the scrub it started
// instead of starting another.
func (a *Activities) PoolScrub(ctx context.Context, p config.Pool) (contract.ScrubReport, error) {
	begin := time.Now()
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return contract.ScrubReport{}, err
	}
	defer done()
	var prev scrubHeartbeat
	resumed := activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &prev) == nil && prev.Started
	st, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		return contract.ScrubReport{}, classify(err)
	}
	if !imported {
		return contract.ScrubReport{}, permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s is not imported", p.Name))
	}
	if !(st.Scan.Function == zfsexec.ScanScrub && (st.Scan.InProgress() || resumed)) {
		if resilvering(st) {
			return contract.ScrubReport{}, fmt.Errorf("pool %s is resilvering; the scrub waits for it", p.Name)
		}
		if err := zp.Scrub(ctx, name); err != nil {
			return contract.ScrubReport{}, classify(err)
		}
		resumed = false
	}
	tick := time.NewTicker(min(max(activityHeartbeat(ctx)/4, 100*time.Millisecond), 10*time.Second))
	defer tick.Stop()
	for {
		st, _, err = poolStatus(ctx, zp, name)
		if err != nil {
			return contract.ScrubReport{}, classify(err)
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, scrubHeartbeat{Progress: contract.Progress{Phase: "scrub", Detail: fmt.Sprintf("%.1f%% done", st.Scan.Percent)}, Started: true})
		}
		if !(st.Scan.Function == zfsexec.ScanScrub && st.Scan.InProgress()) {
			break
		}
		if err := sleepCtx(ctx, min(p.PollInterval, time.Second)); err != nil {
			return contract.ScrubReport{}, err
		}
	}
	rep := contract.ScrubReport{Pool: p.Name, RepairedBytes: st.Scan.Repaired, Errors: st.Scan.Errors, Healthy: st.Healthy(),
		Seconds: time.Since(begin).Seconds(), Scan: st.Scan.Raw, Resumed: resumed}
	st.Walk(func(v *zfsexec.Vdev) { rep.DeviceErrors += v.Read + v.Write + v.Cksum })
	return rep, nil
}

func activityHeartbeat(ctx context.Context) time.Duration {
	if activity.IsActivity(ctx) {
		if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
			return hb
		}
	}
	return 20 * time.Second
}

// PoolDestroyZpool destroys the zpool (importing it first if it is only
// importable). A pool that is neither is a success.
func (a *Activities) PoolDestroyZpool(ctx context.Context, p config.Pool) error {
	hb := startBeat(ctx, "zpool destroy")
	defer hb.stop()
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return err
	}
	defer done()
	_, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		return classify(err)
	}
	if !imported {
		cands, err := importCandidates(ctx, zp, p)
		if err != nil {
			return classify(err)
		}
		found := false
		for _, c := range cands {
			found = found || c.Name == p.Name
		}
		if !found {
			return nil
		}
		if err := zp.Import(ctx, name, zfsexec.ImportOptions{Dirs: []zfsname.Device{importDir(p)}}); err != nil {
			return classify(err)
		}
	}
	return classify(zp.Destroy(ctx, name, true))
}
