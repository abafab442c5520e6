// Package ec2 is zcloud's EC2 and EBS layer: launching instances (on-demand
// or spot, with fallback), their lifecycle and waiters, host keys that are
// known before the first SSH connection, and EBS volumes (create, attach,
// modify, delete). Every operation is idempotent so a retried Temporal
// activity is safe, takes and returns plain structs, and fails with *Error,
// which says whether a retry can help.
package ec2

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// API is the part of *ec2.Client zcloud uses; tests wrap it to inject
// failures moto cannot produce.
type API interface {
	RunInstances(context.Context, *ec2.RunInstancesInput, ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	StartInstances(context.Context, *ec2.StartInstancesInput, ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	StopInstances(context.Context, *ec2.StopInstancesInput, ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	TerminateInstances(context.Context, *ec2.TerminateInstancesInput, ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)

	RequestSpotInstances(context.Context, *ec2.RequestSpotInstancesInput, ...func(*ec2.Options)) (*ec2.RequestSpotInstancesOutput, error)
	DescribeSpotInstanceRequests(context.Context, *ec2.DescribeSpotInstanceRequestsInput, ...func(*ec2.Options)) (*ec2.DescribeSpotInstanceRequestsOutput, error)
	CancelSpotInstanceRequests(context.Context, *ec2.CancelSpotInstanceRequestsInput, ...func(*ec2.Options)) (*ec2.CancelSpotInstanceRequestsOutput, error)
	DescribeSpotPriceHistory(context.Context, *ec2.DescribeSpotPriceHistoryInput, ...func(*ec2.Options)) (*ec2.DescribeSpotPriceHistoryOutput, error)

	CreateVolume(context.Context, *ec2.CreateVolumeInput, ...func(*ec2.Options)) (*ec2.CreateVolumeOutput, error)
	DescribeVolumes(context.Context, *ec2.DescribeVolumesInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	AttachVolume(context.Context, *ec2.AttachVolumeInput, ...func(*ec2.Options)) (*ec2.AttachVolumeOutput, error)
	DetachVolume(context.Context, *ec2.DetachVolumeInput, ...func(*ec2.Options)) (*ec2.DetachVolumeOutput, error)
	DeleteVolume(context.Context, *ec2.DeleteVolumeInput, ...func(*ec2.Options)) (*ec2.DeleteVolumeOutput, error)
	ModifyVolume(context.Context, *ec2.ModifyVolumeInput, ...func(*ec2.Options)) (*ec2.ModifyVolumeOutput, error)
	DescribeVolumesModifications(context.Context, *ec2.DescribeVolumesModificationsInput, ...func(*ec2.Options)) (*ec2.DescribeVolumesModificationsOutput, error)
}

var _ API = (*ec2.Client)(nil)

// Options tune polling. The zero value is usable.
type Options struct {
	// PollInterval between describe calls in waiters (default 5 s).
	PollInterval time.Duration
	// SpotFulfilmentTimeout is how long a spot request may stay open before
	// it counts as "no capacity" and the next fallback is tried (default 3 min).
	SpotFulfilmentTimeout time.Duration
	// OnPoll is called on every waiter poll with a short progress line;
	// activities pass a function that records a Temporal heartbeat.
	OnPoll func(ctx context.Context, progress string)
}

// Client runs zcloud's EC2 operations against an API.
type Client struct {
	api  API
	opts Options
}

// New returns a Client. api is usually awsclient.EC2(...).
func New(api API, opts Options) *Client {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.SpotFulfilmentTimeout <= 0 {
		opts.SpotFulfilmentTimeout = 3 * time.Minute
	}
	return &Client{api: api, opts: opts}
}
