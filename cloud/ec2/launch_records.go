package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TaggedResource is a spot request or an instance, with its tags.
type TaggedResource struct {
	ID   string
	Tags map[string]string
}

// LaunchResources lists what a Launch with this client token made, as
// CleanupLaunch finds it: the token's spot requests and the instances
// tagged with it (an instance its request never got to tag is the
// request's). Each carries the tags the launch gave it, so a caller can
// check whose launch it was before it cleans up.
func (c *Client) LaunchResources(ctx context.Context, token string) ([]TaggedResource, error) {
	if token == "" {
		return nil, permanent("list launch", "no client token to find the launch's resources by")
	}
	reqs, err := c.spotRequests(ctx, token, "")
	if err != nil {
		return nil, err
	}
	var out []TaggedResource
	for _, r := range reqs {
		out = append(out, TaggedResource{ID: aws.ToString(r.SpotInstanceRequestId), Tags: fromTags(r.Tags)})
	}
	insts, err := c.FindInstancesByTag(ctx, map[string]string{TagClientToken: token}, false)
	if err != nil {
		return nil, err
	}
	for _, i := range insts {
		out = append(out, TaggedResource{ID: i.ID, Tags: i.Tags})
	}
	return out, nil
}
