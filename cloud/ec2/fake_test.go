package ec2

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// capacityErrorFake wraps the real moto client and makes chosen instance
// types fail for lack of capacity, which moto cannot be told to do. Every
// other call goes to moto unchanged.
type capacityErrorFake struct {
	API
	// apiError["spot:m5.large"] = "InsufficientInstanceCapacity": the
	// launch call itself fails with that AWS error code.
	apiError map[string]string
	// spotStatus["c5.large"] = "capacity-not-available": the spot request is
	// accepted but stays open with that status, as real EC2 does.
	spotStatus map[string]string

	mu        sync.Mutex
	fakeReqs  map[string]types.SpotInstanceRequest
	cancelled []string
	calls     []string
}

func (f *capacityErrorFake) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *capacityErrorFake) RunInstances(ctx context.Context, in *sdk.RunInstancesInput, o ...func(*sdk.Options)) (*sdk.RunInstancesOutput, error) {
	f.record("on-demand:" + string(in.InstanceType))
	if code := f.apiError["on-demand:"+string(in.InstanceType)]; code != "" {
		return nil, &smithy.GenericAPIError{Code: code, Message: "injected by capacityErrorFake"}
	}
	return f.API.RunInstances(ctx, in, o...)
}

func (f *capacityErrorFake) RequestSpotInstances(ctx context.Context, in *sdk.RequestSpotInstancesInput, o ...func(*sdk.Options)) (*sdk.RequestSpotInstancesOutput, error) {
	typ := string(in.LaunchSpecification.InstanceType)
	f.record("spot:" + typ)
	if code := f.apiError["spot:"+typ]; code != "" {
		return nil, &smithy.GenericAPIError{Code: code, Message: "injected by capacityErrorFake"}
	}
	if code := f.spotStatus[typ]; code != "" {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.fakeReqs == nil {
			f.fakeReqs = map[string]types.SpotInstanceRequest{}
		}
		id := fmt.Sprintf("sir-fake%04d", len(f.fakeReqs))
		r := types.SpotInstanceRequest{
			SpotInstanceRequestId: aws.String(id), State: types.SpotInstanceStateOpen,
			Status: &types.SpotInstanceStatus{Code: aws.String(code), Message: aws.String("injected by capacityErrorFake")},
		}
		f.fakeReqs[id] = r
		return &sdk.RequestSpotInstancesOutput{SpotInstanceRequests: []types.SpotInstanceRequest{r}}, nil
	}
	return f.API.RequestSpotInstances(ctx, in, o...)
}

func (f *capacityErrorFake) DescribeSpotInstanceRequests(ctx context.Context, in *sdk.DescribeSpotInstanceRequestsInput, o ...func(*sdk.Options)) (*sdk.DescribeSpotInstanceRequestsOutput, error) {
	f.mu.Lock()
	var fakes []types.SpotInstanceRequest
	for _, id := range in.SpotInstanceRequestIds {
		if r, ok := f.fakeReqs[id]; ok {
			fakes = append(fakes, r)
		}
	}
	f.mu.Unlock()
	if len(fakes) > 0 {
		return &sdk.DescribeSpotInstanceRequestsOutput{SpotInstanceRequests: fakes}, nil
	}
	return f.API.DescribeSpotInstanceRequests(ctx, in, o...)
}

func (f *capacityErrorFake) CancelSpotInstanceRequests(ctx context.Context, in *sdk.CancelSpotInstanceRequestsInput, o ...func(*sdk.Options)) (*sdk.CancelSpotInstanceRequestsOutput, error) {
	f.mu.Lock()
	var real []string
	for _, id := range in.SpotInstanceRequestIds {
		if r, ok := f.fakeReqs[id]; ok {
			r.State = types.SpotInstanceStateCancelled
			f.fakeReqs[id] = r
			f.cancelled = append(f.cancelled, id)
		} else {
			real = append(real, id)
		}
	}
	f.mu.Unlock()
	if len(real) == 0 {
		return &sdk.CancelSpotInstanceRequestsOutput{}, nil
	}
	return f.API.CancelSpotInstanceRequests(ctx, &sdk.CancelSpotInstanceRequestsInput{SpotInstanceRequestIds: real}, o...)
}

func (f *capacityErrorFake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
