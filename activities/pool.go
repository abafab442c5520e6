package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"

	"zcloud/cloud/ec2"
	"zcloud/cloud/ec2/ec2types"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/poolplan"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// Pool activities: every one is idempotent (a retry after a crash finds
// what the first attempt did and carries on), heartbeats while it runs, and
// takes the pool's settings (config.Pool, no secrets: the LUKS key is
// fetched here by name) from the workflow, which read them once.

// PoolSettings returns the configured pool, defaults applied: the
// workflow records it once, so a run keeps the settings it started with.
func (a *Activities) PoolSettings(ctx context.Context, name string) (config.Pool, error) {
	p, ok := a.Config.Pool(name)
	if !ok {
		return p, notAllowed("pool", "no pool named %q in the configuration (known: %v)", name, a.Config.PoolNames())
	}
	if err := p.Validate("pool "+name, a.Config.Targets); err != nil {
		return p, permanent(contract.ErrTypeConfig, err)
	}
	if p.InstanceID == "" {
		return p, permanent(contract.ErrTypeConfig, fmt.Errorf("pool %s has no instance_id: create, grow, scrub and destroy run on the pool's own instance "+
			"(its sessions, %v, launch theirs); set instance_id for the pool", name, p.Sessions))
	}
	return p, nil
}

// PoolDescribeOperation describes the latest run under workflowID on the
// Temporal server the worker is connected to (a strongly consistent read,
// not a visibility query), so a workflow that could not take a pool's
// operation id can say what holds it.
func (a *Activities) PoolDescribeOperation(ctx context.Context, workflowID string) (contract.PoolOperation, error) {
	op := contract.PoolOperation{WorkflowID: workflowID}
	desc, err := activity.GetClient(ctx).DescribeWorkflowExecution(ctx, workflowID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return op, nil
	}
	if err != nil {
		return op, fmt.Errorf("describe workflow %s: %w", workflowID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	op.RunID = info.GetExecution().GetRunId()
	op.Type = info.GetType().GetName()
	op.Running = info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	if ts := info.GetStartTime(); ts != nil {
		op.Started = ts.AsTime()
	}
	return op, nil
}

// PoolCreateVolume creates (or finds, by token) a volume tagged as the
// pool's, in the instance's availability zone, and waits until it is available.
func (a *Activities) PoolCreateVolume(ctx context.Context, req contract.PoolVolumeRequest) (ec2types.Volume, error) {
	if err := a.allowVolumeSpec(req.Pool.Name, req.Spec); err != nil {
		return ec2types.Volume{}, err
	}
	hb := startBeat(ctx, "create volume "+req.Slot)
	defer hb.stop()
	c, err := a.ec2Client(ctx, req.Pool, hb)
	if err != nil {
		return ec2types.Volume{}, err
	}
	tags := maps.Clone(req.Pool.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[TagPool] = req.Pool.Name
	tags[TagSlot] = req.Slot
	tags[TagState] = StateActive
	tags["Name"] = "zcloud " + req.Pool.Name + " " + req.Slot
	if req.Replaces != "" {
		tags[TagReplaces] = req.Replaces
	}
	v, err := c.CreateVolume(ctx, ec2.VolumeSpec{AvailabilityZone: req.Pool.AvailabilityZone, Type: req.Spec.Type, SizeGiB: req.Spec.SizeGiB,
		IOPS: req.Spec.IOPS, Throughput: req.Spec.Throughput, Tags: tags, ClientToken: req.Token})
	if err != nil {
		return v, ec2Err(err)
	}
	if v.Tags[TagPool] != req.Pool.Name {
		return v, permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("volume %s found by token %s is not tagged as pool %s's", v.ID, req.Token, req.Pool.Name))
	}
	return v, nil
}

// PoolAttachVolume attaches the volume to the pool's instance (a volume
// already attached there is not attached again) and waits until its
// by-id device node appears on the instance (checked over SSH).
func (a *Activities) PoolAttachVolume(ctx context.Context, req contract.PoolDeviceRequest) (contract.PoolAttachResult, error) {
	hb := startBeat(ctx, "attach "+req.VolumeID)
	defer hb.stop()
	c, err := a.ec2Client(ctx, req.Pool, hb)
	if err != nil {
		return contract.PoolAttachResult{}, err
	}
	v, err := c.DescribeVolume(ctx, req.VolumeID)
	if err != nil {
		return contract.PoolAttachResult{}, ec2Err(err)
	}
	if v.Tags[TagPool] != req.Pool.Name {
		return contract.PoolAttachResult{}, permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("refusing to attach %s: it is not tagged %s=%s", req.VolumeID, TagPool, req.Pool.Name))
	}
	att, err := c.AttachVolume(ctx, req.VolumeID, req.Pool.InstanceID)
	if err != nil {
		return contract.PoolAttachResult{}, ec2Err(err)
	}
	dev, err := ebsDevice(req.Pool, req.VolumeID)
	if err != nil {
		return contract.PoolAttachResult{}, permanent(contract.ErrTypeInvalidName, err)
	}
	hb.set("waiting for " + dev.String())
	if err := a.waitDeviceNode(ctx, req.Pool, dev); err != nil {
		return contract.PoolAttachResult{}, err
	}
	return contract.PoolAttachResult{VolumeID: req.VolumeID, EC2Device: att.Device, Device: dev.String()}, nil
}

// waitDeviceNode polls the target until the device node exists.
func (a *Activities) waitDeviceNode(ctx context.Context, p config.Pool, dev zfsname.Device) error {
	_, r, err := a.poolTarget(ctx, p)
	if err != nil {
		return err
	}
	defer r.Close()
	poll := min(p.PollInterval, time.Second)
	for {
		if ok, err := zfsexec.DeviceExists(ctx, r, dev); err != nil {
			return classify(err)
		} else if ok {
			return nil
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return fmt.Errorf("device %s did not appear: %w", dev, err)
		}
	}
}

// refuseIfMember fails when the pool is imported and still uses the volume:
// nothing detaches or deletes a device ZFS still needs, whatever the
// workflow asks.
func (a *Activities) refuseIfMember(ctx context.Context, p config.Pool, volumeID, what string) error {
	zp, _, done, err := a.zpoolOn(ctx, p)
	if err != nil {
		return err
	}
	defer done()
	name, err := poolName(p)
	if err != nil {
		return err
	}
	st, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		return classify(err)
	}
	if imported && hasVolume(st, volumeID) {
		return permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("refusing to %s %s: it is still a device of pool %s", what, volumeID, p.Name))
	}
	return nil
}

// PoolDetachVolume detaches a volume that is no longer a pool device (its
// LUKS mapping closed first). A detached or missing volume is a success.
func (a *Activities) PoolDetachVolume(ctx context.Context, req contract.PoolDeviceRequest) error {
	hb := startBeat(ctx, "detach "+req.VolumeID)
	defer hb.stop()
	if err := a.refuseIfMember(ctx, req.Pool, req.VolumeID, "detach"); err != nil {
		return err
	}
	if req.Pool.LUKS.Enabled {
		if err := a.PoolLUKSClose(ctx, req); err != nil {
			return err
		}
	}
	c, err := a.ec2Client(ctx, req.Pool, hb)
	if err != nil {
		return err
	}
	return ec2Err(c.DetachVolume(ctx, req.VolumeID, req.Pool.InstanceID, false))
}

// PoolDeleteVolume deletes a detached volume, only if it is tagged as this
// pool's and is no pool device. A missing volume is a success.
func (a *Activities) PoolDeleteVolume(ctx context.Context, req contract.PoolDeviceRequest) error {
	hb := startBeat(ctx, "delete "+req.VolumeID)
	defer hb.stop()
	if err := a.refuseIfMember(ctx, req.Pool, req.VolumeID, "delete"); err != nil {
		return err
	}
	c, err := a.ec2Client(ctx, req.Pool, hb)
	if err != nil {
		return err
	}
	return ec2Err(c.DeleteVolume(ctx, req.VolumeID, map[string]string{TagPool: req.Pool.Name}))
}

// PoolModifyVolume starts ModifyVolume to the new size, enforcing EBS's
// rules itself (moto does not), and appends it to the volume's
// modification-history tag. A refusal by the rate rule is a result, not an
// error: the workflow sleeps on a timer until NotBefore.
func (a *Activities) PoolModifyVolume(ctx context.Context, req contract.PoolModifyRequest) (contract.PoolModifyResult, error) {
	if err := a.allowVolumeSpec(req.Pool.Name, poolplan.VolumeSpec{SizeGiB: req.SizeGiB}); err != nil {
		return contract.PoolModifyResult{}, err
	}
	hb := startBeat(ctx, "modify "+req.VolumeID)
	defer hb.stop()
	c, err := a.ec2Client(ctx, req.Pool, hb)
	if err != nil {
		return contract.PoolModifyResult{}, err
	}
	v, err := c.DescribeVolume(ctx, req.VolumeID)
	if err != nil {
		return contract.PoolModifyResult{}, ec2Err(err)
	}
	if v.Tags[TagPool] != req.Pool.Name {
		return contract.PoolModifyResult{}, permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("refusing to modify %s: it is not tagged %s=%s", req.VolumeID, TagPool, req.Pool.Name))
	}
	history := mergeModifications(req.History, parseModTag(req.VolumeID, v.Tags[TagModifications]))
	m, err := c.ModifyVolume(ctx, ec2.ModifySpec{VolumeID: req.VolumeID, SizeGiB: req.SizeGiB, History: history, Now: req.Now})
	if err != nil {
		var le *ec2.ModifyLimitError
		if asLimit(err, &le) {
			return contract.PoolModifyResult{Deferred: true, NotBefore: le.NotBefore, Reason: le.Reason}, nil
		}
		if ec2.IsRetryable(err) && ec2Code(err) == "IncorrectModificationState" {
			return contract.PoolModifyResult{Deferred: true, Reason: err.Error()}, nil
		}
		return contract.PoolModifyResult{}, ec2Err(err)
	}
	if m.Unchanged {
		return contract.PoolModifyResult{Unchanged: true}, nil
	}
	rec := m.Record()
	if rec.Start.IsZero() {
		rec.Start = req.Now
	}
	own := parseModTag(req.VolumeID, v.Tags[TagModifications])
	if err := c.TagVolume(ctx, req.VolumeID, map[string]string{TagModifications: formatModTag(mergeModifications(own, []poolplan.Modification{rec}))}); err != nil {
		return contract.PoolModifyResult{}, ec2Err(err)
	}
	return contract.PoolModifyResult{Modification: rec}, nil
}

// PoolCheckModification polls the volume's latest modification once (the
// workflow waits between polls on a durable timer).
func (a *Activities) PoolCheckModification(ctx context.Context, req contract.PoolDeviceRequest) (ec2types.VolumeModification, error) {
	hb := startBeat(ctx, "check modification of "+req.VolumeID)
	defer hb.stop()
	c, err := a.ec2Client(ctx, req.Pool, hb)
	if err != nil {
		return ec2types.VolumeModification{}, err
	}
	m, err := c.LatestModification(ctx, req.VolumeID)
	if ec2.IsNotFound(err) {
		return ec2types.VolumeModification{VolumeID: req.VolumeID, State: poolplan.ModCompleted}, nil
	}
	if err == nil && m.State == poolplan.ModFailed {
		return m, permanent(contract.ErrTypeEC2, fmt.Errorf("modification of %s failed: %s", req.VolumeID, m.Message))
	}
	return m, ec2Err(err)
}

// PoolDestroyVolumes detaches and deletes every volume tagged as the
// pool's, after the zpool is gone. Volumes attached to another instance are
// left alone and reported.
func (a *Activities) PoolDestroyVolumes(ctx context.Context, p config.Pool) (contract.PoolDestroyVolumesReport, error) {
	hb := startBeat(ctx, "destroy volumes")
	defer hb.stop()
	var rep contract.PoolDestroyVolumesReport
	zp, _, done, err := a.zpoolOn(ctx, p)
	if err != nil {
		return rep, err
	}
	name, err := poolName(p)
	if err != nil {
		done()
		return rep, err
	}
	_, imported, err := poolStatus(ctx, zp, name)
	if err != nil {
		done()
		return rep, classify(err)
	}
	if imported {
		done()
		return rep, permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("refusing to delete volumes: pool %s is still imported", p.Name))
	}
	cands, err := importCandidates(ctx, zp, p)
	done()
	if err != nil {
		return rep, classify(err)
	}
	for _, c := range cands {
		if c.Name == p.Name {
			return rep, permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("refusing to delete volumes: pool %s is exported but still importable (destroy the zpool first)", p.Name))
		}
	}
	c, err := a.ec2Client(ctx, p, hb)
	if err != nil {
		return rep, err
	}
	vs, err := c.FindVolumesByTag(ctx, map[string]string{TagPool: p.Name})
	if err != nil {
		return rep, ec2Err(err)
	}
	for _, v := range vs {
		other := false
		for _, at := range v.Attachments {
			if at.InstanceID != p.InstanceID && at.State != "detached" {
				other = true
			}
		}
		if other {
			rep.Skipped = append(rep.Skipped, v.ID)
			continue
		}
		hb.set("deleting " + v.ID)
		if p.LUKS.Enabled {
			if err := a.PoolLUKSClose(ctx, contract.PoolDeviceRequest{Pool: p, VolumeID: v.ID}); err != nil {
				return rep, err
			}
		}
		if err := c.DetachVolume(ctx, v.ID, p.InstanceID, false); err != nil {
			return rep, ec2Err(err)
		}
		if err := c.DeleteVolume(ctx, v.ID, map[string]string{TagPool: p.Name}); err != nil {
			return rep, ec2Err(err)
		}
		rep.Deleted = append(rep.Deleted, v.ID)
	}
	return rep, nil
}
