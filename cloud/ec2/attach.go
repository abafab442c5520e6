package ec2

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"zcloud/cloud/ec2/ec2types"
)

// Attachment states (EC2 VolumeAttachmentState).
const (
	AttachAttaching = "attaching"
	AttachAttached  = "attached"
	AttachDetaching = "detaching"
)

// DefaultDeviceDir is where udev links NVMe EBS devices by volume id.
const DefaultDeviceDir = "/dev/disk/by-id"

// NVMeDevicePath is the by-id path of an attached EBS volume on a Nitro
// instance: <dir>/nvme-Amazon_Elastic_Block_Store_vol0123… (the volume id
// without its dash). dir defaults to DefaultDeviceDir; tests point it at a
// directory of links to sparse files.
func NVMeDevicePath(volumeID, dir string) string {
	if dir == "" {
		dir = DefaultDeviceDir
	}
	return filepath.Join(dir, "nvme-Amazon_Elastic_Block_Store_"+strings.ReplaceAll(volumeID, "-", ""))
}

// deviceNames are the names zcloud attaches data volumes under: AWS's
// recommended /dev/sd[f-z], then /dev/xvdb[a-z], /dev/xvdc[a-z]... (two-letter
// suffixes never collide with root or instance-store names). On Nitro the
// name is only a label; the volume shows up as NVMe and is found by id.
func deviceNames() []string {
	var out []string
	for c := 'f'; c <= 'z'; c++ {
		out = append(out, "/dev/sd"+string(c))
	}
	for _, a := range "bcdefgh" {
		for c := 'a'; c <= 'z'; c++ {
			out = append(out, "/dev/xvd"+string(a)+string(c))
		}
	}
	return out
}

// deviceKey maps /dev/sdf, /dev/xvdf and /dev/sdf1 to "f": Xen exposes sdX
// as xvdX, so they are the same slot.
func deviceKey(name string) string {
	n := strings.TrimPrefix(name, "/dev/")
	for _, p := range []string{"xvd", "sd", "hd"} {
		if strings.HasPrefix(n, p) {
			n = strings.TrimPrefix(n, p)
			break
		}
	}
	return strings.TrimRight(n, "0123456789")
}

// FreeDeviceName returns the first data-volume name not used by inst.
func FreeDeviceName(inst ec2types.Instance, skip ...string) (string, bool) {
	used := map[string]bool{}
	for d := range inst.Devices {
		used[deviceKey(d)] = true
	}
	for _, d := range skip {
		used[deviceKey(d)] = true
	}
	for _, d := range deviceNames() {
		if !used[deviceKey(d)] {
			return d, true
		}
	}
	return "", false
}

// AttachVolume attaches a volume to an instance under a free device name
// and waits until it is attached. A volume already attached (or attaching)
// to that instance is a success; one attached elsewhere is a permanent error.
func (c *Client) AttachVolume(ctx context.Context, volumeID, instanceID string) (ec2types.Attachment, error) {
	op := "attach " + volumeID + " to " + instanceID
	var tried []string
	for range 5 {
		v, err := c.DescribeVolume(ctx, volumeID)
		if err != nil {
			return ec2types.Attachment{}, err
		}
		if a, ok := v.AttachedTo(instanceID); ok && a.State != AttachDetaching {
			return c.waitAttachment(ctx, volumeID, instanceID, AttachAttached)
		}
		for _, a := range v.Attachments {
			if a.InstanceID != instanceID && a.State != "detached" {
				return ec2types.Attachment{}, permanent(op, "volume is attached to %s as %s", a.InstanceID, a.Device)
			}
		}
		if v.State != VolumeAvailable {
			if v, err = c.WaitVolumeState(ctx, volumeID, VolumeAvailable); err != nil {
				return ec2types.Attachment{}, err
			}
		}
		inst, err := c.DescribeInstance(ctx, instanceID)
		if err != nil {
			return ec2types.Attachment{}, err
		}
		dev, ok := FreeDeviceName(inst, tried...)
		if !ok {
			return ec2types.Attachment{}, permanent(op, "no free device name on %s", instanceID)
		}
		_, err = c.api.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(volumeID), InstanceId: aws.String(instanceID), Device: aws.String(dev)})
		if err == nil {
			return c.waitAttachment(ctx, volumeID, instanceID, AttachAttached)
		}
		err = classify(op, err)
		// A concurrent attach took the name (or the volume): look again.
		if e := err.(*Error); strings.Contains(e.Message, "already in use") || strings.Contains(e.Message, "in use") {
			tried = append(tried, dev)
			continue
		}
		return ec2types.Attachment{}, err
	}
	return ec2types.Attachment{}, retryable(op, "DeviceNameInUse", "device names %v were taken concurrently", tried)
}

func (c *Client) waitAttachment(ctx context.Context, volumeID, instanceID, want string) (ec2types.Attachment, error) {
	var att ec2types.Attachment
	err := c.poll(ctx, volumeID+" "+want, func(ctx context.Context) (bool, string, error) {
		v, err := c.DescribeVolume(ctx, volumeID)
		if err != nil {
			return false, "", err
		}
		a, ok := v.AttachedTo(instanceID)
		if !ok {
			if want == "detached" {
				return v.State == VolumeAvailable, v.State, nil
			}
			return false, "", retryable("wait for "+volumeID, "AttachmentLost", "no longer attached to %s", instanceID)
		}
		att = a
		return a.State == want, a.State, nil
	})
	return att, err
}

// DetachVolume detaches a volume from an instance (always naming the
// instance: moto answers 500 without it, and it guards against detaching
// from the wrong one) and waits until the volume is available. A volume not
// attached to that instance, or missing, is a success.
func (c *Client) DetachVolume(ctx context.Context, volumeID, instanceID string, force bool) error {
	op := "detach " + volumeID + " from " + instanceID
	v, err := c.DescribeVolume(ctx, volumeID)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	a, ok := v.AttachedTo(instanceID)
	if !ok {
		return nil
	}
	if a.State != AttachDetaching {
		in := &ec2.DetachVolumeInput{VolumeId: aws.String(volumeID), InstanceId: aws.String(instanceID)}
		if a.Device != "" {
			in.Device = aws.String(a.Device)
		}
		if force {
			in.Force = aws.Bool(true)
		}
		if _, err := c.api.DetachVolume(ctx, in); err != nil {
			err = classify(op, err)
			if e := err.(*Error); IsNotFound(err) || e.Code == "IncorrectState" && strings.Contains(e.Message, "available") {
				return nil
			}
			return err
		}
	}
	_, err = c.waitAttachment(ctx, volumeID, instanceID, "detached")
	return err
}
