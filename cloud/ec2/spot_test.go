package ec2

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func (e *motoEnv) spotSpec(token string) LaunchSpec {
	s := e.spec(token)
	s.Market, s.SpotMaxPrice = Spot, "0.05"
	return s
}

func TestLaunchSpotIsIdempotent(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	spec := e.spotSpec(unique("spot"))
	inst, err := e.c.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Market != Spot || inst.SpotRequestID == "" || inst.Tags[TagClientToken] != spec.ClientToken || inst.Tags["zcloud:test"] != spec.ClientToken {
		t.Fatalf("spot launch: %+v", inst)
	}
	again, err := e.c.Launch(ctx, spec)
	if err != nil || again.ID != inst.ID {
		t.Fatalf("relaunch: %s %v, want %s", again.ID, err, inst.ID)
	}
	reqs, err := e.c.spotRequests(ctx, spec.ClientToken, "")
	if err != nil || len(reqs) != 1 {
		t.Fatalf("%d spot requests for the token (%v), want 1", len(reqs), err)
	}
}

func TestLaunchSpotResumesARequestMadeBeforeACrash(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	spec := e.spotSpec(unique("crash"))
	// The activity sent RequestSpotInstances, then the worker died before
	// it tagged the instance.
	out, err := e.api.RequestSpotInstances(ctx, &sdk.RequestSpotInstancesInput{
		InstanceCount:       aws.Int32(1),
		LaunchSpecification: &types.RequestSpotLaunchSpecification{ImageId: aws.String(e.ami), InstanceType: "t3.micro", SubnetId: aws.String(e.subnet)},
		TagSpecifications:   []types.TagSpecification{tagSpec(types.ResourceTypeSpotInstancesRequest, map[string]string{TagClientToken: spec.ClientToken, tagInstanceType: "t3.micro"})},
	})
	if err != nil {
		t.Fatal(err)
	}
	reqID := aws.ToString(out.SpotInstanceRequests[0].SpotInstanceRequestId)
	fake := &capacityErrorFake{API: e.api}
	inst, err := New(fake, fastOptions()).Launch(ctx, spec)
	if err != nil || inst.SpotRequestID != reqID || inst.Tags[TagClientToken] != spec.ClientToken {
		t.Fatalf("resume: %+v %v, want the instance of %s", inst, err, reqID)
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("resume launched again: %v", calls)
	}
}

func TestLaunchSpotFallsBackAcrossTypesThenOnDemand(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	fake := &capacityErrorFake{
		API:        e.api,
		apiError:   map[string]string{"spot:m5.large": "InsufficientInstanceCapacity", "spot:m5a.large": "SpotMaxPriceTooLow"},
		spotStatus: map[string]string{"c5.large": "capacity-not-available"},
	}
	c := New(fake, fastOptions())

	spec := e.spotSpec(unique("fallback"))
	spec.InstanceType, spec.FallbackInstanceTypes = "m5.large", []string{"c5.large", "t3.small"}
	inst, err := c.Launch(ctx, spec)
	if err != nil || inst.Type != "t3.small" || inst.Market != Spot {
		t.Fatalf("fallback to t3.small spot: %+v %v", inst, err)
	}
	if got, want := fake.Calls(), []string{"spot:m5.large", "spot:c5.large", "spot:t3.small"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	if len(fake.cancelled) != 1 {
		t.Fatalf("the capacity-starved spot request was not cancelled: %v", fake.cancelled)
	}

	// Every spot option starved: on demand if allowed.
	fake.calls = nil
	spec = e.spotSpec(unique("ondemand"))
	spec.InstanceType, spec.FallbackInstanceTypes, spec.FallbackToOnDemand = "m5.large", []string{"m5a.large"}, true
	inst, err = c.Launch(ctx, spec)
	if err != nil || inst.Type != "m5.large" || inst.Market != OnDemand {
		t.Fatalf("fallback to on-demand: %+v %v", inst, err)
	}
	if got, want := fake.Calls(), []string{"spot:m5.large", "spot:m5a.large", "on-demand:m5.large"}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}

	// Not allowed: a retryable capacity error naming every attempt.
	spec = e.spotSpec(unique("starved"))
	spec.InstanceType, spec.FallbackInstanceTypes = "m5.large", []string{"c5.large"}
	_, err = c.Launch(ctx, spec)
	if !IsCapacity(err) || !IsRetryable(err) || !strings.Contains(err.Error(), "spot m5.large: InsufficientInstanceCapacity; spot c5.large: capacity-not-available") {
		t.Fatalf("all starved: %v", err)
	}
}

func TestLaunchPermanentErrorStopsTheFallback(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	fake := &capacityErrorFake{API: e.api, apiError: map[string]string{"spot:m5.large": "InvalidAMIID.NotFound"}}
	spec := e.spotSpec(unique("perm"))
	spec.InstanceType, spec.FallbackInstanceTypes, spec.FallbackToOnDemand = "m5.large", []string{"t3.small"}, true
	_, err := New(fake, fastOptions()).Launch(ctx, spec)
	if !IsPermanent(err) || IsRetryable(err) {
		t.Fatalf("bad AMI: %v, want permanent", err)
	}
	if calls := fake.Calls(); len(calls) != 1 {
		t.Fatalf("kept trying after a permanent error: %v", calls)
	}
	fake = &capacityErrorFake{API: e.api, apiError: map[string]string{"on-demand:m5.large": "UnauthorizedOperation"}}
	spec = e.spec(unique("unauth"))
	spec.InstanceType = "m5.large"
	if _, err := New(fake, fastOptions()).Launch(ctx, spec); !IsPermanent(err) {
		t.Fatalf("unauthorized: %v", err)
	}
}

func TestLaunchSpotNotFulfilledInTimeFallsBack(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	fake := &capacityErrorFake{API: e.api, spotStatus: map[string]string{"m5.large": "pending-fulfillment"}}
	opts := fastOptions()
	opts.SpotFulfilmentTimeout = 300 * time.Millisecond
	spec := e.spotSpec(unique("slow"))
	spec.InstanceType, spec.FallbackInstanceTypes = "m5.large", []string{"t3.small"}
	inst, err := New(fake, opts).Launch(ctx, spec)
	if err != nil || inst.Type != "t3.small" {
		t.Fatalf("slow spot: %+v %v", inst, err)
	}
	if len(fake.cancelled) != 1 {
		t.Fatalf("the open request was not cancelled: %v", fake.cancelled)
	}
}
