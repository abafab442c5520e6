package ec2

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"zcloud/cloud/ec2/ec2types"
	"zcloud/poolplan"
)

// Volume states (EC2 VolumeState).
const (
	VolumeCreating  = "creating"
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"
	VolumeDeleting  = "deleting"
	VolumeDeleted   = "deleted"
	VolumeError     = "error"
)

// VolumeSpec describes a volume to create.
type VolumeSpec struct {
	AvailabilityZone string              `json:"availability_zone"`
	Type             poolplan.VolumeType `json:"type"`
	SizeGiB          int64               `json:"size_gib"`
	IOPS             int64               `json:"iops,omitempty"`
	Throughput       int64               `json:"throughput,omitempty"`
	Encrypted        bool                `json:"encrypted,omitempty"`
	KMSKeyID         string              `json:"kms_key_id,omitempty"`
	Tags             map[string]string   `json:"tags,omitempty"`
	// ClientToken makes CreateVolume idempotent (required).
	ClientToken string `json:"client_token"`
}

func fromVolume(v types.Volume) ec2types.Volume {
	out := ec2types.Volume{
		ID:               aws.ToString(v.VolumeId),
		Type:             poolplan.VolumeType(v.VolumeType),
		SizeGiB:          int64(aws.ToInt32(v.Size)),
		IOPS:             int64(aws.ToInt32(v.Iops)),
		Throughput:       int64(aws.ToInt32(v.Throughput)),
		AvailabilityZone: aws.ToString(v.AvailabilityZone),
		State:            string(v.State),
		Tags:             fromTags(v.Tags),
		CreateTime:       aws.ToTime(v.CreateTime),
	}
	for _, a := range v.Attachments {
		out.Attachments = append(out.Attachments, ec2types.Attachment{
			VolumeID: out.ID, InstanceID: aws.ToString(a.InstanceId), Device: aws.ToString(a.Device), State: string(a.State),
		})
	}
	return out
}

// CreateVolume creates a volume (or returns the one an earlier call with the
// same ClientToken created) and waits until it is available. The spec is
// checked against poolplan's per-type EBS limits first, since moto does
// not enforce them.
func (c *Client) CreateVolume(ctx context.Context, spec VolumeSpec) (ec2types.Volume, error) {
	op := "create volume"
	if spec.ClientToken == "" {
		return ec2types.Volume{}, permanent(op, "no client token (needed so a retry cannot create twice)")
	}
	if spec.AvailabilityZone == "" {
		return ec2types.Volume{}, permanent(op, "no availability zone")
	}
	if err := poolplan.CheckVolume("", poolplan.VolumeSpec{Type: spec.Type, SizeGiB: spec.SizeGiB, IOPS: spec.IOPS, Throughput: spec.Throughput}); err != nil {
		return ec2types.Volume{}, &Error{Op: op, Kind: KindPermanent, Code: "InvalidParameterValue", Message: err.Error(), Err: err}
	}
	found, err := c.FindVolumesByTag(ctx, map[string]string{TagClientToken: spec.ClientToken})
	if err != nil {
		return ec2types.Volume{}, err
	}
	if len(found) > 0 {
		return c.WaitVolumeState(ctx, found[0].ID, VolumeAvailable, VolumeInUse)
	}
	in := &ec2.CreateVolumeInput{
		AvailabilityZone:  aws.String(spec.AvailabilityZone),
		VolumeType:        types.VolumeType(spec.Type),
		Size:              aws.Int32(int32(spec.SizeGiB)),
		ClientToken:       aws.String(spec.ClientToken),
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeVolume, withTag(spec.Tags, TagClientToken, spec.ClientToken))},
	}
	if spec.IOPS > 0 {
		in.Iops = aws.Int32(int32(spec.IOPS))
	}
	if spec.Throughput > 0 {
		in.Throughput = aws.Int32(int32(spec.Throughput))
	}
	if spec.Encrypted {
		in.Encrypted = aws.Bool(true)
		if spec.KMSKeyID != "" {
			in.KmsKeyId = aws.String(spec.KMSKeyID)
		}
	}
	out, err := c.api.CreateVolume(ctx, in)
	if err != nil {
		return ec2types.Volume{}, classify(op, err)
	}
	return c.WaitVolumeState(ctx, aws.ToString(out.VolumeId), VolumeAvailable)
}

// DescribeVolume returns one volume; KindNotFound if it does not exist.
func (c *Client) DescribeVolume(ctx context.Context, id string) (ec2types.Volume, error) {
	out, err := c.api.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil {
		return ec2types.Volume{}, classify("describe "+id, err)
	}
	for _, v := range out.Volumes {
		if aws.ToString(v.VolumeId) == id {
			return fromVolume(v), nil
		}
	}
	return ec2types.Volume{}, &Error{Op: "describe " + id, Kind: KindNotFound, Code: "InvalidVolume.NotFound"}
}

// FindVolumesByTag lists live volumes carrying every tag in tags, oldest
// first (deleting/deleted ones are left out).
func (c *Client) FindVolumesByTag(ctx context.Context, tags map[string]string) ([]ec2types.Volume, error) {
	if len(tags) == 0 {
		return nil, permanent("find volumes", "no tags to search by")
	}
	var found []ec2types.Volume
	for p := ec2.NewDescribeVolumesPaginator(c.api, &ec2.DescribeVolumesInput{Filters: tagFilters(tags)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("find volumes", err)
		}
		for _, v := range out.Volumes {
			if vol := fromVolume(v); vol.State != VolumeDeleting && vol.State != VolumeDeleted {
				found = append(found, vol)
			}
		}
	}
	slices.SortFunc(found, func(a, b ec2types.Volume) int {
		if c := a.CreateTime.Compare(b.CreateTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return found, nil
}

// WaitVolumeState polls until the volume is in one of want.
func (c *Client) WaitVolumeState(ctx context.Context, id string, want ...string) (ec2types.Volume, error) {
	var v ec2types.Volume
	err := c.poll(ctx, id+" "+strings.Join(want, "|"), func(ctx context.Context) (bool, string, error) {
		var err error
		v, err = c.DescribeVolume(ctx, id)
		if IsNotFound(err) && !slices.Contains(want, VolumeDeleted) {
			return false, "not visible yet", nil
		}
		if err != nil {
			return false, "", err
		}
		if v.State == VolumeError {
			return false, "", permanent("wait for "+id, "volume is in state error")
		}
		return slices.Contains(want, v.State), v.State, nil
	})
	return v, err
}

// DeleteVolume deletes a volume; a missing one is a success. When
// requireTags is set the volume must carry all of them, so a destroy can
// never delete a volume that is not the pool's. An attached volume gives a
// retryable VolumeInUse error: detach it first.
func (c *Client) DeleteVolume(ctx context.Context, id string, requireTags map[string]string) error {
	op := "delete " + id
	v, err := c.DescribeVolume(ctx, id)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for k, want := range requireTags {
		if got, ok := v.Tags[k]; !ok || got != want {
			return permanent(op, "refusing: tag %s is %q, want %q", k, got, want)
		}
	}
	switch v.State {
	case VolumeDeleting, VolumeDeleted:
		return nil
	case VolumeInUse:
		return retryable(op, "VolumeInUse", "still attached to %v", v.Attachments)
	}
	if _, err := c.api.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)}); err != nil {
		if err = classify(op, err); IsNotFound(err) {
			return nil
		}
		return err
	}
	return nil
}
