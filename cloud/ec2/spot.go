package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// tagInstanceType records on a spot request which type it asked for.
const tagInstanceType = "zcloud:instance-type"

// spotRequests lists spot requests made for spec's token (and type, if set).
func (c *Client) spotRequests(ctx context.Context, token, typ string) ([]types.SpotInstanceRequest, error) {
	tags := map[string]string{TagClientToken: token}
	if typ != "" {
		tags[tagInstanceType] = typ
	}
	in := &ec2.DescribeSpotInstanceRequestsInput{Filters: tagFilters(tags)}
	var reqs []types.SpotInstanceRequest
	for p := ec2.NewDescribeSpotInstanceRequestsPaginator(c.api, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("describe spot requests", err)
		}
		reqs = append(reqs, out.SpotInstanceRequests...)
	}
	return reqs, nil
}

// resumeSpot picks up a spot request a previous, interrupted call made.
func (c *Client) resumeSpot(ctx context.Context, spec LaunchSpec) (Instance, bool, error) {
	reqs, err := c.spotRequests(ctx, spec.ClientToken, "")
	if err != nil {
		return Instance{}, false, err
	}
	for _, r := range reqs {
		if r.State == types.SpotInstanceStateOpen || r.State == types.SpotInstanceStateActive {
			inst, err := c.awaitSpot(ctx, spec, aws.ToString(r.SpotInstanceRequestId))
			return inst, err == nil, err
		}
	}
	return Instance{}, false, nil
}

func (c *Client) launchSpot(ctx context.Context, spec LaunchSpec, typ string) (Instance, error) {
	op := "RequestSpotInstances " + typ
	prior, err := c.spotRequests(ctx, spec.ClientToken, typ)
	if err != nil {
		return Instance{}, err
	}
	ls := &types.RequestSpotLaunchSpecification{
		ImageId:      aws.String(spec.AMI),
		InstanceType: types.InstanceType(typ),
	}
	if spec.SubnetID != "" {
		ls.SubnetId = aws.String(spec.SubnetID)
	} else if spec.AvailabilityZone != "" {
		ls.Placement = &types.SpotPlacement{AvailabilityZone: aws.String(spec.AvailabilityZone)}
	}
	if len(spec.SecurityGroupIDs) > 0 {
		ls.SecurityGroupIds = spec.SecurityGroupIDs
	}
	if spec.KeyName != "" {
		ls.KeyName = aws.String(spec.KeyName)
	}
	if spec.UserData != "" {
		ls.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(spec.UserData)))
	}
	reqTags := withTag(withTag(spec.Tags, TagClientToken, spec.ClientToken), tagInstanceType, typ)
	in := &ec2.RequestSpotInstancesInput{
		ClientToken:                  aws.String(deriveToken(spec.ClientToken, Spot, typ, len(prior))),
		InstanceCount:                aws.Int32(1),
		Type:                         types.SpotInstanceTypeOneTime,
		InstanceInterruptionBehavior: types.InstanceInterruptionBehaviorTerminate,
		LaunchSpecification:          ls,
		TagSpecifications:            []types.TagSpecification{tagSpec(types.ResourceTypeSpotInstancesRequest, reqTags)},
	}
	if spec.SpotMaxPrice != "" {
		in.SpotPrice = aws.String(spec.SpotMaxPrice)
	}
	out, err := c.api.RequestSpotInstances(ctx, in)
	if err != nil {
		return Instance{}, classify(op, err)
	}
	if len(out.SpotInstanceRequests) != 1 {
		return Instance{}, retryable(op, "", "got %d spot requests, want 1", len(out.SpotInstanceRequests))
	}
	return c.awaitSpot(ctx, spec, aws.ToString(out.SpotInstanceRequests[0].SpotInstanceRequestId))
}

// awaitSpot waits for a spot request to get an instance, cancelling it on
// a capacity status or after SpotFulfilmentTimeout.
func (c *Client) awaitSpot(ctx context.Context, spec LaunchSpec, reqID string) (Instance, error) {
	op := "spot request " + reqID
	wctx, cancel := context.WithTimeout(ctx, c.opts.SpotFulfilmentTimeout)
	defer cancel()
	var instanceID string
	err := c.poll(wctx, op, func(ctx context.Context) (bool, string, error) {
		r, err := c.describeSpot(ctx, reqID)
		if IsNotFound(err) {
			return false, "not visible yet", nil
		}
		if err != nil {
			return false, "", err
		}
		if instanceID = aws.ToString(r.InstanceId); instanceID != "" {
			return true, "fulfilled", nil
		}
		code, msg := spotStatus(r)
		switch {
		case spotCapacityStatus[code]:
			return false, "", &Error{Op: op, Kind: KindCapacity, Code: code, Message: msg}
		case r.State == types.SpotInstanceStateFailed:
			return false, "", &Error{Op: op, Kind: KindPermanent, Code: code, Message: msg}
		case r.State == types.SpotInstanceStateCancelled || r.State == types.SpotInstanceStateClosed:
			return false, "", &Error{Op: op, Kind: KindRetryable, Code: code, Message: "request " + string(r.State) + " without an instance"}
		}
		return false, code, nil
	})
	if err != nil {
		timedOut := ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded)
		if !IsCapacity(err) && !timedOut {
			return Instance{}, err
		}
		// Cancel so it cannot be fulfilled behind our back; if it was in the
		// meantime, take the instance rather than leak it.
		id, cerr := c.cancelSpot(ctx, reqID)
		if cerr != nil {
			return Instance{}, cerr
		}
		if id == "" {
			if timedOut {
				err = &Error{Op: op, Kind: KindCapacity, Code: "spot-not-fulfilled", Message: fmt.Sprintf("not fulfilled within %s", c.opts.SpotFulfilmentTimeout)}
			}
			return Instance{}, err
		}
		instanceID = id
	}
	tags := withTag(withTag(spec.Tags, TagClientToken, spec.ClientToken), TagSpotRequest, reqID)
	if _, err := c.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instanceID}, Tags: toTags(tags)}); err != nil {
		return Instance{}, classify("tag "+instanceID, err)
	}
	var inst Instance
	err = c.poll(ctx, instanceID+" visible", func(ctx context.Context) (bool, string, error) {
		var err error
		inst, err = c.DescribeInstance(ctx, instanceID)
		if IsNotFound(err) {
			return false, "not visible yet", nil
		}
		return err == nil, "", err
	})
	return inst, err
}

func (c *Client) describeSpot(ctx context.Context, reqID string) (types.SpotInstanceRequest, error) {
	out, err := c.api.DescribeSpotInstanceRequests(ctx, &ec2.DescribeSpotInstanceRequestsInput{SpotInstanceRequestIds: []string{reqID}})
	if err != nil {
		return types.SpotInstanceRequest{}, classify("describe "+reqID, err)
	}
	if len(out.SpotInstanceRequests) == 0 {
		return types.SpotInstanceRequest{}, &Error{Op: "describe " + reqID, Kind: KindNotFound, Code: "InvalidSpotInstanceRequestID.NotFound"}
	}
	return out.SpotInstanceRequests[0], nil
}

// cancelSpot cancels a request and returns the instance it got, if any.
func (c *Client) cancelSpot(ctx context.Context, reqID string) (string, error) {
	if _, err := c.api.CancelSpotInstanceRequests(ctx, &ec2.CancelSpotInstanceRequestsInput{SpotInstanceRequestIds: []string{reqID}}); err != nil {
		if err = classify("cancel "+reqID, err); !IsNotFound(err) {
			return "", err
		}
		return "", nil
	}
	r, err := c.describeSpot(ctx, reqID)
	if IsNotFound(err) {
		return "", nil
	}
	return aws.ToString(r.InstanceId), err
}

func spotStatus(r types.SpotInstanceRequest) (code, msg string) {
	if r.Status != nil {
		code, msg = aws.ToString(r.Status.Code), aws.ToString(r.Status.Message)
	}
	if r.Fault != nil && code == "" {
		code, msg = aws.ToString(r.Fault.Code), aws.ToString(r.Fault.Message)
	}
	return code, msg
}
