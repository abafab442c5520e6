package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"zcloud/cloud/ec2/ec2types"
)

// TagVolume sets tags on a volume (overwriting values of existing keys).
// Pools keep their modification history in a tag this way, since EBS only
// reports a volume's latest modification.
func (c *Client) TagVolume(ctx context.Context, volumeID string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	_, err := c.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{volumeID}, Tags: toTags(tags)})
	if err != nil {
		return classify("tag "+volumeID, err)
	}
	return nil
}

// DescribeVolumes returns the volumes with the given ids, in that order;
// missing ones are left out.
func (c *Client) DescribeVolumes(ctx context.Context, ids []string) ([]ec2types.Volume, error) {
	out := make([]ec2types.Volume, 0, len(ids))
	for _, id := range ids {
		v, err := c.DescribeVolume(ctx, id)
		if IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
