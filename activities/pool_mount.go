package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"zcloud/cloud/ec2"
	"zcloud/cloud/ec2/ec2types"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/zfsexec"
)

// The pool's durable record is its volumes' tags: which volumes are the
// pool's now is read from EC2, never from a list in the config, so a
// session after a rolling replace attaches the replacements and never a
// deleted volume.
const (
	// TagState is active on every volume create makes and every
	// replacement, and retiring on an old volume once the pool no longer
	// uses it (it is detached and deleted next). Only active volumes (and
	// volumes from before the tag, which have none) are the pool's.
	TagState      = "zcloud:state"
	StateActive   = "active"
	StateRetiring = "retiring"
)

// currentVolumes lists the pool's current volumes: tagged as the pool's,
// live, not retiring; in slot order.
func currentVolumes(ctx context.Context, c *ec2.Client, pool string) ([]ec2types.Volume, error) {
	vs, err := c.FindVolumesByTag(ctx, map[string]string{TagPool: pool})
	if err != nil {
		return nil, err
	}
	vs = slices.DeleteFunc(vs, func(v ec2types.Volume) bool { return v.Tags[TagState] == StateRetiring })
	slices.SortStableFunc(vs, func(a, b ec2types.Volume) int { return cmp.Compare(a.Tags[TagSlot], b.Tags[TagSlot]) })
	return vs, nil
}

// oneZone checks that the pool's volumes are all in the pool's
// availability zone and returns it.
func oneZone(p config.Pool, vs []ec2types.Volume) (string, error) {
	for _, v := range vs {
		if v.AvailabilityZone != p.AvailabilityZone {
			return "", permanent(contract.ErrTypeWrongZone, fmt.Errorf("pool %s: volume %s (slot %s) is in %s, not in the pool's availability zone %s: "+
				"an instance can attach volumes of its own zone only", p.Name, v.ID, v.Tags[TagSlot], v.AvailabilityZone, p.AvailabilityZone))
		}
	}
	return p.AvailabilityZone, nil
}

// attachPoolVolumes attaches each of the pool's current volumes to the
// instance, which must run in their zone. A volume attached to another
// instance is refused with its name: the pool is mounted elsewhere.
func attachPoolVolumes(ctx context.Context, c *ec2.Client, p config.Pool, inst ec2types.Instance, note func(string)) ([]string, error) {
	vs, err := currentVolumes(ctx, c, p.Name)
	if err != nil {
		return nil, ec2Err(err)
	}
	if len(vs) == 0 {
		return nil, permanent(contract.ErrTypeNotFound, fmt.Errorf("pool %s has no volumes (none tagged %s=%s in %s): create it first with zcloud pool create %s",
			p.Name, TagPool, p.Name, p.AWS.Region, p.Name))
	}
	az, err := oneZone(p, vs)
	if err != nil {
		return nil, err
	}
	if inst.AvailabilityZone != "" && inst.AvailabilityZone != az {
		return nil, permanent(contract.ErrTypeWrongZone, fmt.Errorf("instance %s runs in %s but pool %s's volumes are in %s: "+
			"set the target's subnet_id to a subnet in %s (or leave it empty)", inst.ID, inst.AvailabilityZone, p.Name, az, az))
	}
	var ids []string
	for _, v := range vs {
		for _, at := range v.Attachments {
			if at.InstanceID != inst.ID && at.State != "detached" {
				return nil, permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("pool %s: volume %s (slot %s) is attached to instance %s: the pool is mounted there "+
					"(a session or pool operation that did not finish?); detach it from %s once the pool is exported there", p.Name, v.ID, v.Tags[TagSlot], at.InstanceID, at.InstanceID))
			}
		}
		if note != nil {
			note("attach " + v.ID)
		}
		if _, err := c.AttachVolume(ctx, v.ID, inst.ID); err != nil {
			return nil, ec2Err(err)
		}
		ids = append(ids, v.ID)
	}
	return ids, nil
}

// detachPoolVolumes detaches every volume tagged as the pool's that is
// attached to instanceID (retiring ones too); a volume not attached there
// is left alone.
func detachPoolVolumes(ctx context.Context, c *ec2.Client, pool, instanceID string, force bool) error {
	vs, err := c.FindVolumesByTag(ctx, map[string]string{TagPool: pool})
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vs {
		if _, ok := v.AttachedTo(instanceID); !ok {
			continue
		}
		if err := c.DetachVolume(ctx, v.ID, instanceID, force); err != nil && !ec2.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitDevices waits until each volume's device node is on the host, so
// zpool import never sees a pool with a device missing (it would import
// it degraded). It gives up after limit with the volumes still missing.
func waitDevices(ctx context.Context, r zfsexec.Runner, p config.Pool, volumeIDs []string, limit time.Duration, note func(string)) error {
	deadline := time.Now().Add(limit)
	for {
		var missing []string
		for _, id := range volumeIDs {
			dev, err := ebsDevice(p, id)
			if err != nil {
				return permanent(contract.ErrTypeInvalidName, err)
			}
			ok, err := zfsexec.DeviceExists(ctx, r, dev)
			if err != nil {
				return classify(err)
			}
			if !ok {
				missing = append(missing, dev.String())
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pool %s: device nodes %v did not appear on %s within %s", p.Name, missing, r.Host(), limit)
		}
		if note != nil {
			note(fmt.Sprintf("waiting for %d device node(s): %v", len(missing), missing))
		}
		if err := sleepCtx(ctx, min(p.PollInterval, time.Second)); err != nil {
			return err
		}
	}
}

// PoolMount attaches the pool's current volumes to the pool's instance
// and waits for their device nodes: the first step of an operation on a
// pool that sessions mount (between operations its volumes are attached
// nowhere).
func (a *Activities) PoolMount(ctx context.Context, p config.Pool) ([]string, error) {
	hb := startBeat(ctx, "mount")
	defer hb.stop()
	if err := a.Gate.Reached(ctx, "pool-mount"); err != nil { // test-only
		return nil, err
	}
	c, err := a.ec2Client(ctx, p, hb)
	if err != nil {
		return nil, err
	}
	inst, err := c.DescribeInstance(ctx, p.InstanceID)
	if err != nil {
		return nil, ec2Err(err)
	}
	ids, err := attachPoolVolumes(ctx, c, p, inst, hb.set)
	if err != nil {
		return nil, err
	}
	_, r, err := a.poolTarget(ctx, p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := waitDevices(ctx, r, p, ids, 10*time.Minute, hb.set); err != nil {
		return nil, err
	}
	if p.LUKS.Enabled {
		for _, id := range ids {
			if _, err := a.PoolLUKSOpen(ctx, contract.PoolDeviceRequest{Pool: p, VolumeID: id}); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}

// PoolUnmount detaches the pool's volumes from the pool's instance once
// the pool is exported, handing the pool back to the sessions that mount
// it. An imported pool is refused: nothing detaches devices ZFS uses.
func (a *Activities) PoolUnmount(ctx context.Context, p config.Pool) error {
	hb := startBeat(ctx, "unmount")
	defer hb.stop()
	zp, name, done, err := a.openPool(ctx, p)
	if err != nil {
		return err
	}
	_, imported, err := poolStatus(ctx, zp, name)
	done()
	if err != nil {
		return classify(err)
	}
	if imported {
		return permanent(contract.ErrTypePoolUnsafe, fmt.Errorf("refusing to detach pool %s's volumes: the pool is imported on %s", p.Name, p.Target))
	}
	c, err := a.ec2Client(ctx, p, hb)
	if err != nil {
		return err
	}
	if p.LUKS.Enabled {
		vs, err := currentVolumes(ctx, c, p.Name)
		if err != nil {
			return ec2Err(err)
		}
		for _, v := range vs {
			if err := a.PoolLUKSClose(ctx, contract.PoolDeviceRequest{Pool: p, VolumeID: v.ID}); err != nil {
				return err
			}
		}
	}
	return ec2Err(detachPoolVolumes(ctx, c, p.Name, p.InstanceID, false))
}
