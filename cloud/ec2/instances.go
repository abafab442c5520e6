package ec2

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"zcloud/cloud/ec2/ec2types"
)

// Instance states (EC2 InstanceStateName).
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

func fromInstance(in types.Instance) ec2types.Instance {
	out := ec2types.Instance{
		ID:            aws.ToString(in.InstanceId),
		Type:          string(in.InstanceType),
		Market:        ec2types.OnDemand,
		SpotRequestID: aws.ToString(in.SpotInstanceRequestId),
		SubnetID:      aws.ToString(in.SubnetId),
		PublicIP:      aws.ToString(in.PublicIpAddress),
		PrivateIP:     aws.ToString(in.PrivateIpAddress),
		LaunchTime:    aws.ToTime(in.LaunchTime),
		Tags:          fromTags(in.Tags),
		Devices:       map[string]string{},
	}
	if in.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
		out.Market = ec2types.Spot
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.Placement != nil {
		out.AvailabilityZone = aws.ToString(in.Placement.AvailabilityZone)
	}
	for _, m := range in.BlockDeviceMappings {
		if m.Ebs != nil {
			out.Devices[aws.ToString(m.DeviceName)] = aws.ToString(m.Ebs.VolumeId)
		}
	}
	if out.SpotRequestID == "" {
		out.SpotRequestID = out.Tags[TagSpotRequest]
	}
	return out
}

// DescribeInstance returns one instance; KindNotFound if it does not exist.
func (c *Client) DescribeInstance(ctx context.Context, id string) (ec2types.Instance, error) {
	out, err := c.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return ec2types.Instance{}, classify("describe "+id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id {
				return fromInstance(in), nil
			}
		}
	}
	return ec2types.Instance{}, &Error{Op: "describe " + id, Kind: KindNotFound, Code: "InvalidInstanceID.NotFound"}
}

// FindInstancesByTag lists instances carrying every tag in tags, oldest
// first. Terminated instances are left out unless includeTerminated.
func (c *Client) FindInstancesByTag(ctx context.Context, tags map[string]string, includeTerminated bool) ([]ec2types.Instance, error) {
	if len(tags) == 0 {
		return nil, permanent("find instances", "no tags to search by")
	}
	in := &ec2.DescribeInstancesInput{Filters: tagFilters(tags)}
	var found []ec2types.Instance
	for p := ec2.NewDescribeInstancesPaginator(c.api, in); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify("find instances", err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				inst := fromInstance(i)
				if !includeTerminated && (inst.State == StateTerminated || inst.State == StateShuttingDown) {
					continue
				}
				found = append(found, inst)
			}
		}
	}
	slices.SortFunc(found, func(a, b ec2types.Instance) int {
		if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return found, nil
}

// Start starts a stopped instance and waits until it is running. Starting a
// running instance is a no-op.
func (c *Client) Start(ctx context.Context, id string) (ec2types.Instance, error) {
	inst, err := c.DescribeInstance(ctx, id)
	if err != nil {
		return ec2types.Instance{}, err
	}
	switch inst.State {
	case StateRunning, StatePending:
	case StateTerminated, StateShuttingDown:
		return inst, permanent("start "+id, "instance is %s", inst.State)
	case StateStopping:
		if inst, err = c.WaitState(ctx, id, StateStopped); err != nil {
			return inst, err
		}
		fallthrough
	default:
		if _, err := c.api.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
			return inst, classify("start "+id, err)
		}
	}
	return c.WaitState(ctx, id, StateRunning)
}

// Stop stops an instance and waits until it is stopped. Stopping a stopped
// instance is a no-op.
func (c *Client) Stop(ctx context.Context, id string) (ec2types.Instance, error) {
	inst, err := c.DescribeInstance(ctx, id)
	if err != nil {
		return ec2types.Instance{}, err
	}
	switch inst.State {
	case StateStopped:
		return inst, nil
	case StateTerminated, StateShuttingDown:
		return inst, permanent("stop "+id, "instance is %s", inst.State)
	}
	if _, err := c.api.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		return inst, classify("stop "+id, err)
	}
	return c.WaitState(ctx, id, StateStopped)
}

// Terminate terminates an instance and waits until it is terminated.
// Terminating a terminated or unknown instance is a success, so a
// compensation can always run it.
func (c *Client) Terminate(ctx context.Context, id string) error {
	inst, err := c.DescribeInstance(ctx, id)
	if IsNotFound(err) || (err == nil && inst.State == StateTerminated) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := c.api.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		if err = classify("terminate "+id, err); IsNotFound(err) {
			return nil
		}
		return err
	}
	_, err = c.WaitState(ctx, id, StateTerminated)
	if IsNotFound(err) { // terminated instances eventually vanish
		return nil
	}
	return err
}

// WaitState polls until the instance reaches want. Reaching a state from
// which want is impossible (e.g. terminated while waiting for running) is a
// permanent error.
func (c *Client) WaitState(ctx context.Context, id, want string) (ec2types.Instance, error) {
	var inst ec2types.Instance
	err := c.poll(ctx, id+" "+want, func(ctx context.Context) (bool, string, error) {
		var err error
		inst, err = c.DescribeInstance(ctx, id)
		if err != nil {
			// Just-launched instances can be invisible for a moment.
			if IsNotFound(err) && want != StateTerminated {
				return false, "not visible yet", nil
			}
			return false, "", err
		}
		if inst.State == want {
			return true, inst.State, nil
		}
		if unreachable(inst.State, want) {
			return false, "", permanent("wait for "+id, "instance is %s, will never be %s", inst.State, want)
		}
		return false, inst.State, nil
	})
	return inst, err
}

func unreachable(state, want string) bool {
	gone := state == StateTerminated || state == StateShuttingDown
	switch want {
	case StateRunning:
		return gone || state == StateStopped
	case StateStopped:
		return gone
	}
	return false
}

// WaitRunning waits until the instance runs and has an address to SSH to.
func (c *Client) WaitRunning(ctx context.Context, id string) (ec2types.Instance, error) {
	inst, err := c.WaitState(ctx, id, StateRunning)
	if err != nil || inst.Address() != "" {
		return inst, err
	}
	err = c.poll(ctx, id+" address", func(ctx context.Context) (bool, string, error) {
		var err error
		inst, err = c.DescribeInstance(ctx, id)
		return err == nil && inst.Address() != "", fmt.Sprintf("state %s, no address yet", inst.State), err
	})
	return inst, err
}
