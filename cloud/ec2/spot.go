package ec2

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"zcloud/cloud/ec2/ec2types"
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

// resumeSpot picks up a spot request a previous, interrupted call made:
// one still open, or active with a live instance. An active request whose
// instance is gone (terminated, shutting down, or not to be found) is not
// adopted: EC2 keeps a one-time request "active" for a while after its
// instance was interrupted or terminated by a compensation (moto keeps it
// so for good), and adopting it would hand the caller a dead instance that
// never runs. Such a request is cancelled, so no later call weighs it
// again, and the search goes on; with none left, Launch makes a fresh one.
func (c *Client) resumeSpot(ctx context.Context, spec LaunchSpec) (ec2types.Instance, bool, error) {
	reqs, err := c.spotRequests(ctx, spec.ClientToken, "")
	if err != nil {
		return ec2types.Instance{}, false, err
	}
	for _, r := range reqs {
		if r.State != types.SpotInstanceStateOpen && r.State != types.SpotInstanceStateActive {
			continue
		}
		reqID := aws.ToString(r.SpotInstanceRequestId)
		if id := aws.ToString(r.InstanceId); id != "" {
			state, gone, err := c.instanceGone(ctx, id)
			if err != nil {
				return ec2types.Instance{}, false, err
			}
			if gone {
				if _, err := c.cancelSpot(ctx, reqID); err != nil {
					return ec2types.Instance{}, false, err
				}
				if c.opts.OnPoll != nil {
					c.opts.OnPoll(ctx, fmt.Sprintf("launch: not resuming spot request %s: its instance %s is %s; cancelled it", reqID, id, state))
				}
				continue
			}
		}
		inst, err := c.awaitSpot(ctx, spec, reqID)
		return inst, err == nil, err
	}
	return ec2types.Instance{}, false, nil
}

// instanceGone says whether the instance id (named by a spot request) can
// no longer run: terminated, shutting down, or not found. A just-launched
// instance can be invisible for a moment, so not found counts only once it
// stayed so for SpotFulfilmentTimeout; a terminated one stays visible for
// about an hour. state is the instance's state, or "not found".
func (c *Client) instanceGone(ctx context.Context, id string) (state string, gone bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, c.opts.SpotFulfilmentTimeout)
	defer cancel()
	err = c.poll(wctx, id+" visible", func(ctx context.Context) (bool, string, error) {
		inst, err := c.DescribeInstance(ctx, id)
		if IsNotFound(err) {
			return false, "not visible yet", nil
		}
		if err != nil {
			return false, "", err
		}
		state = inst.State
		return true, state, nil
	})
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return "not found", true, nil
		}
		return "", false, err
	}
	return state, state == StateTerminated || state == StateShuttingDown, nil
}

func (c *Client) launchSpot(ctx context.Context, spec LaunchSpec, typ string) (ec2types.Instance, error) {
	op := "RequestSpotInstances " + typ
	prior, err := c.spotRequests(ctx, spec.ClientToken, typ)
	if err != nil {
		return ec2types.Instance{}, err
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
		ClientToken:                  aws.String(deriveToken(spec.ClientToken, ec2types.Spot, typ, len(prior))),
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
		return ec2types.Instance{}, classify(op, err)
	}
	if len(out.SpotInstanceRequests) != 1 {
		return ec2types.Instance{}, retryable(op, "", "got %d spot requests, want 1", len(out.SpotInstanceRequests))
	}
	return c.awaitSpot(ctx, spec, aws.ToString(out.SpotInstanceRequests[0].SpotInstanceRequestId))
}

// awaitSpot waits for a spot request to get an instance, cancelling it on
// a capacity status or after SpotFulfilmentTimeout.
func (c *Client) awaitSpot(ctx context.Context, spec LaunchSpec, reqID string) (ec2types.Instance, error) {
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
			return ec2types.Instance{}, err
		}
		// Cancel so it cannot be fulfilled behind our back; if it was in the
		// meantime, take the instance rather than leak it.
		id, cerr := c.cancelSpot(ctx, reqID)
		if cerr != nil {
			return ec2types.Instance{}, cerr
		}
		if id == "" {
			if timedOut {
				err = &Error{Op: op, Kind: KindCapacity, Code: "spot-not-fulfilled", Message: fmt.Sprintf("not fulfilled within %s", c.opts.SpotFulfilmentTimeout)}
			}
			return ec2types.Instance{}, err
		}
		instanceID = id
	}
	tags := withTag(withTag(spec.Tags, TagClientToken, spec.ClientToken), TagSpotRequest, reqID)
	if _, err := c.api.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{instanceID}, Tags: toTags(tags)}); err != nil {
		return ec2types.Instance{}, classify("tag "+instanceID, err)
	}
	var inst ec2types.Instance
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
