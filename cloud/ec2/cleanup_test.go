package ec2

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// crashedSpotRequest makes the spot request a Launch with token makes
// (tagged with the token at creation), as if the worker died right after
// RequestSpotInstances: moto fulfils it at once, and nobody tagged the
// instance. It returns the request and its instance.
func (e *motoEnv) crashedSpotRequest(t *testing.T, ctx context.Context, token string) (reqID, instID string) {
	t.Helper()
	out, err := e.api.RequestSpotInstances(ctx, &sdk.RequestSpotInstancesInput{
		InstanceCount:       aws.Int32(1),
		LaunchSpecification: &types.RequestSpotLaunchSpecification{ImageId: aws.String(e.ami), InstanceType: "t3.micro", SubnetId: aws.String(e.subnet)},
		TagSpecifications: []types.TagSpecification{tagSpec(types.ResourceTypeSpotInstancesRequest,
			map[string]string{TagClientToken: token, tagInstanceType: "t3.micro", "zcloud:test": token})},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := out.SpotInstanceRequests[0]
	reqID, instID = aws.ToString(r.SpotInstanceRequestId), aws.ToString(r.InstanceId)
	if instID == "" {
		if r, err := e.c.describeSpot(ctx, reqID); err == nil {
			instID = aws.ToString(r.InstanceId)
		}
	}
	if instID == "" {
		t.Fatalf("moto did not fulfil spot request %s", reqID)
	}
	return reqID, instID
}

// liveRequests are token's spot requests still open or active.
func (e *motoEnv) liveRequests(t *testing.T, ctx context.Context, token string) []string {
	t.Helper()
	reqs, err := e.c.spotRequests(ctx, token, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range reqs {
		if r.State == types.SpotInstanceStateOpen || r.State == types.SpotInstanceStateActive {
			ids = append(ids, aws.ToString(r.SpotInstanceRequestId))
		}
	}
	return ids
}

func (e *motoEnv) state(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	inst, err := e.c.DescribeInstance(ctx, id)
	if err != nil {
		t.Fatalf("describe %s: %v", id, err)
	}
	return inst.State
}

func TestCleanupLaunchCancelsASpotRequestLeftByACrash(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	token := unique("crashed")
	reqID, instID := e.crashedSpotRequest(t, ctx, token)
	// What made this a gap: the instance does not carry the token, so a
	// search of instances by token finds nothing.
	if found, err := e.c.FindInstancesByTag(ctx, map[string]string{TagClientToken: token}, true); err != nil || len(found) != 0 {
		t.Fatalf("instances carrying the token: %+v %v; want none (the crash came before tagging)", found, err)
	}
	// Another launch's request and instance must survive the cleanup.
	other := unique("other")
	otherReq, otherInst := e.crashedSpotRequest(t, ctx, other)

	var hooked []string
	hook := func(_ context.Context, id string) error { hooked = append(hooked, id); return nil }
	done, err := e.c.CleanupLaunch(ctx, token, hook)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first cleanup: %s", done)
	if !slices.Equal(done.CancelledRequests, []string{reqID}) || !slices.Equal(done.Terminated, []string{instID}) || !slices.Equal(hooked, []string{instID}) {
		t.Fatalf("cleanup %+v, hook saw %v; want request %s cancelled and instance %s terminated after the hook", done, hooked, reqID, instID)
	}
	if live := e.liveRequests(t, ctx, token); len(live) != 0 {
		t.Errorf("spot requests still open or active after the cleanup: %v", live)
	}
	if s := e.state(t, ctx, instID); s != StateTerminated {
		t.Errorf("instance %s is %s, want terminated", instID, s)
	}
	if live := e.liveRequests(t, ctx, other); !slices.Equal(live, []string{otherReq}) {
		t.Errorf("another launch's requests: %v, want %s untouched", live, otherReq)
	}
	if s := e.state(t, ctx, otherInst); s != StateRunning && s != StatePending {
		t.Errorf("another launch's instance %s is %s", otherInst, s)
	}

	// Again (a retried compensation): nothing to do, nothing done.
	again, err := e.c.CleanupLaunch(ctx, token, hook)
	if err != nil || !again.Empty() || len(hooked) != 1 {
		t.Fatalf("second cleanup: %+v %v (hook saw %v), want a no-op", again, err, hooked)
	}
	if _, err := e.c.CleanupLaunch(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCleanupLaunchTerminatesALaunchedSpotInstanceAndCancelsItsRequest(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	spec := e.spotSpec(unique("launched"))
	inst, err := e.c.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.c.CleanupLaunch(ctx, spec.ClientToken, nil)
	if err != nil || !slices.Equal(done.Terminated, []string{inst.ID}) {
		t.Fatalf("cleanup %+v %v, want %s terminated", done, err, inst.ID)
	}
	if live := e.liveRequests(t, ctx, spec.ClientToken); len(live) != 0 {
		t.Errorf("spot requests still open or active: %v", live)
	}
	if s := e.state(t, ctx, inst.ID); s != StateTerminated {
		t.Errorf("instance %s is %s", inst.ID, s)
	}
	if again, err := e.c.CleanupLaunch(ctx, spec.ClientToken, nil); err != nil || !again.Empty() {
		t.Fatalf("second cleanup: %+v %v, want a no-op", again, err)
	}
	if _, err := e.c.CleanupLaunch(ctx, "", nil); !IsPermanent(err) {
		t.Fatalf("no token: %v, want a permanent error", err)
	}
}

func TestLaunchRetryCancelsWhatEarlierAttemptsLeft(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	spec := e.spotSpec(unique("retry"))
	// Two attempts died after their spot requests (a crash, then another
	// before the retry could adopt the first): one token, two instances.
	_, a := e.crashedSpotRequest(t, ctx, spec.ClientToken)
	_, b := e.crashedSpotRequest(t, ctx, spec.ClientToken)
	fake := &capacityErrorFake{API: e.api}
	var progress []string
	opts := fastOptions()
	opts.OnPoll = func(_ context.Context, p string) { progress = append(progress, p) }
	inst, err := New(fake, opts).Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("the retry launched again: %v", calls)
	}
	stray := b
	if inst.ID == b {
		stray = a
	} else if inst.ID != a {
		t.Fatalf("the retry returned %s, want %s or %s", inst.ID, a, b)
	}
	if s := e.state(t, ctx, stray); s != StateTerminated {
		t.Errorf("the other attempt's instance %s is %s, want terminated", stray, s)
	}
	if live := e.liveRequests(t, ctx, spec.ClientToken); len(live) != 1 || live[0] != inst.SpotRequestID {
		t.Errorf("live spot requests %v, want only %s (the kept instance's)", live, inst.SpotRequestID)
	}
	t.Logf("progress: %q", progress)
	// And again: the same instance, nothing else touched.
	again, err := New(fake, opts).Launch(ctx, spec)
	if err != nil || again.ID != inst.ID {
		t.Fatalf("second retry: %s %v, want %s", again.ID, err, inst.ID)
	}
	if s := e.state(t, ctx, inst.ID); s != StateRunning && s != StatePending {
		t.Errorf("kept instance %s is %s", inst.ID, s)
	}
	if _, err := e.c.CleanupLaunch(ctx, spec.ClientToken, nil); err != nil {
		t.Fatal(err)
	}
}
