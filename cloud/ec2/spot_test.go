package ec2

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"zcloud/cloud/ec2/ec2types"
)

func (e *motoEnv) spotSpec(token string) LaunchSpec {
	s := e.spec(token)
	s.Market, s.SpotMaxPrice = ec2types.Spot, "0.05"
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
	if inst.Market != ec2types.Spot || inst.SpotRequestID == "" || inst.Tags[TagClientToken] != spec.ClientToken || inst.Tags["zcloud:test"] != spec.ClientToken {
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
	if err != nil || inst.Type != "t3.small" || inst.Market != ec2types.Spot {
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
	if err != nil || inst.Type != "m5.large" || inst.Market != ec2types.OnDemand {
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

// spotRequestState is the state of reqID in moto ("" once it is gone:
// moto forgets a cancelled request).
func (e *motoEnv) spotRequestState(t *testing.T, reqID string) types.SpotInstanceState {
	t.Helper()
	r, err := e.c.describeSpot(testCtx(t), reqID)
	if IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

// A spot request stays "active" after its instance was terminated (by a
// spot interruption, or by a compensation). A retried Launch with its token
// must not adopt that dead instance: it cancels the request and makes a
// fresh one, whose instance runs.
func TestLaunchSpotDoesNotResumeARequestWhoseInstanceWasTerminated(t *testing.T) {
	for _, tagged := range []bool{true, false} {
		t.Run(map[bool]string{true: "tagged", false: "never-tagged"}[tagged], func(t *testing.T) {
			e := newMotoEnv(t)
			ctx := testCtx(t)
			spec := e.spotSpec(unique("dead"))
			var deadID, deadReq string
			if tagged { // the first attempt finished; the instance was then lost
				first, err := e.c.Launch(ctx, spec)
				if err != nil {
					t.Fatal(err)
				}
				deadID, deadReq = first.ID, first.SpotRequestID
			} else { // the first attempt died before it tagged the instance
				out, err := e.api.RequestSpotInstances(ctx, &sdk.RequestSpotInstancesInput{
					InstanceCount:       aws.Int32(1),
					LaunchSpecification: &types.RequestSpotLaunchSpecification{ImageId: aws.String(e.ami), InstanceType: "t3.micro", SubnetId: aws.String(e.subnet)},
					TagSpecifications:   []types.TagSpecification{tagSpec(types.ResourceTypeSpotInstancesRequest, map[string]string{TagClientToken: spec.ClientToken, tagInstanceType: "t3.micro"})},
				})
				if err != nil {
					t.Fatal(err)
				}
				deadID, deadReq = aws.ToString(out.SpotInstanceRequests[0].InstanceId), aws.ToString(out.SpotInstanceRequests[0].SpotInstanceRequestId)
			}
			if _, err := e.api.TerminateInstances(ctx, &sdk.TerminateInstancesInput{InstanceIds: []string{deadID}}); err != nil {
				t.Fatal(err)
			}
			if st := e.spotRequestState(t, deadReq); st != types.SpotInstanceStateActive {
				t.Fatalf("precondition: request %s of terminated %s is %q, want active (as moto keeps it)", deadReq, deadID, st)
			}
			var progress []string
			opts := fastOptions()
			opts.OnPoll = func(_ context.Context, p string) { progress = append(progress, p) }
			c := New(e.api, opts)

			inst, err := c.Launch(ctx, spec)
			if err != nil {
				t.Fatalf("relaunch: %v", err)
			}
			if inst.ID == deadID || inst.SpotRequestID == deadReq {
				t.Fatalf("relaunch adopted the terminated instance %s of %s: %+v", deadID, deadReq, inst)
			}
			if inst.Market != ec2types.Spot || inst.Tags[TagClientToken] != spec.ClientToken {
				t.Fatalf("relaunch: %+v", inst)
			}
			if running, err := c.WaitRunning(ctx, inst.ID); err != nil || running.State != StateRunning {
				t.Fatalf("the new instance %s does not run: %s %v", inst.ID, running.State, err)
			}
			if st := e.spotRequestState(t, deadReq); st == types.SpotInstanceStateOpen || st == types.SpotInstanceStateActive {
				t.Errorf("the dead request %s is still %s", deadReq, st)
			}
			if !slices.ContainsFunc(progress, func(p string) bool {
				return strings.Contains(p, "not resuming spot request "+deadReq) && strings.Contains(p, deadID+" is terminated")
			}) {
				t.Errorf("no progress line says why %s was not resumed: %q", deadReq, progress)
			}
			live, err := c.FindInstancesByTag(ctx, map[string]string{TagClientToken: spec.ClientToken}, false)
			if err != nil || len(live) != 1 || live[0].ID != inst.ID {
				t.Fatalf("live instances of the token: %+v %v, want only %s", live, err, inst.ID)
			}
			// And the new request is the one a further retry resumes.
			again, err := c.Launch(ctx, spec)
			if err != nil || again.ID != inst.ID {
				t.Fatalf("second relaunch: %s %v, want %s", again.ID, err, inst.ID)
			}
		})
	}
}

// hiddenInstances wraps moto and answers as if the chosen instances did not
// exist, as EC2 does for an instance terminated long ago.
type hiddenInstances struct {
	API
	hide map[string]bool
}

func (h hiddenInstances) DescribeInstances(ctx context.Context, in *sdk.DescribeInstancesInput, o ...func(*sdk.Options)) (*sdk.DescribeInstancesOutput, error) {
	for _, id := range in.InstanceIds {
		if h.hide[id] {
			return nil, &smithy.GenericAPIError{Code: "InvalidInstanceID.NotFound", Message: "The instance ID '" + id + "' does not exist"}
		}
	}
	out, err := h.API.DescribeInstances(ctx, in, o...)
	if err != nil {
		return nil, err
	}
	for i, r := range out.Reservations {
		out.Reservations[i].Instances = slices.DeleteFunc(r.Instances, func(x types.Instance) bool { return h.hide[aws.ToString(x.InstanceId)] })
	}
	return out, nil
}

// An active request naming an instance EC2 does not know (after waiting
// SpotFulfilmentTimeout for it to become visible) is not resumed either.
func TestLaunchSpotDoesNotResumeARequestWhoseInstanceIsNotFound(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	spec := e.spotSpec(unique("vanished"))
	first, err := e.c.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.SpotFulfilmentTimeout = 300 * time.Millisecond
	c := New(hiddenInstances{API: e.api, hide: map[string]bool{first.ID: true}}, opts)
	start := time.Now()
	inst, err := c.Launch(ctx, spec)
	if err != nil {
		t.Fatalf("relaunch: %v", err)
	}
	if inst.ID == first.ID || inst.SpotRequestID == first.SpotRequestID {
		t.Fatalf("relaunch adopted the vanished instance %s: %+v", first.ID, inst)
	}
	if waited := time.Since(start); waited < opts.SpotFulfilmentTimeout {
		t.Errorf("gave up on %s after %s, before SpotFulfilmentTimeout (%s)", first.ID, waited, opts.SpotFulfilmentTimeout)
	}
	if st := e.spotRequestState(t, first.SpotRequestID); st == types.SpotInstanceStateOpen || st == types.SpotInstanceStateActive {
		t.Errorf("the request %s of the vanished instance is still %s", first.SpotRequestID, st)
	}
	if _, err := c.WaitRunning(ctx, inst.ID); err != nil {
		t.Fatalf("the new instance %s does not run: %v", inst.ID, err)
	}
}
