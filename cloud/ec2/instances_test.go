package ec2

import (
	"testing"

	"zcloud/cloud/ec2/ec2types"
)

func (e *motoEnv) spec(token string) LaunchSpec {
	return LaunchSpec{
		AMI: e.ami, InstanceType: "t3.micro", SubnetID: e.subnet, KeyName: "",
		Tags: map[string]string{"zcloud:test": token}, UserData: "#cloud-config\n", Market: ec2types.OnDemand, ClientToken: token,
	}
}

func TestLaunchOnDemandIsIdempotent(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	spec := e.spec(unique("od"))
	inst, err := e.c.Launch(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if inst.ID == "" || inst.Type != "t3.micro" || inst.Market != ec2types.OnDemand || inst.Tags[TagClientToken] != spec.ClientToken || inst.Tags["zcloud:test"] != spec.ClientToken {
		t.Fatalf("launched %+v", inst)
	}
	again, err := e.c.Launch(ctx, spec)
	if err != nil || again.ID != inst.ID {
		t.Fatalf("relaunch with the same token: %v %v, want %s", again.ID, err, inst.ID)
	}
	found, err := e.c.FindInstancesByTag(ctx, map[string]string{"zcloud:test": spec.ClientToken}, true)
	if err != nil || len(found) != 1 {
		t.Fatalf("FindInstancesByTag: %d %v, want exactly one instance", len(found), err)
	}
	running, err := e.c.WaitRunning(ctx, inst.ID)
	if err != nil || running.State != StateRunning || running.Address() == "" {
		t.Fatalf("WaitRunning: %+v %v", running, err)
	}
}

func TestInstanceLifecycle(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	inst, err := e.c.Launch(ctx, e.spec(unique("life")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.WaitRunning(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second round checks each call is idempotent
		if got, err := e.c.Stop(ctx, inst.ID); err != nil || got.State != StateStopped {
			t.Fatalf("Stop: %+v %v", got, err)
		}
	}
	for range 2 {
		if got, err := e.c.Start(ctx, inst.ID); err != nil || got.State != StateRunning {
			t.Fatalf("Start: %+v %v", got, err)
		}
	}
	for range 2 {
		if err := e.c.Terminate(ctx, inst.ID); err != nil {
			t.Fatalf("Terminate: %v", err)
		}
	}
	if got, err := e.c.DescribeInstance(ctx, inst.ID); err != nil || got.State != StateTerminated {
		t.Fatalf("after terminate: %+v %v", got, err)
	}
	if _, err := e.c.Start(ctx, inst.ID); !IsPermanent(err) {
		t.Fatalf("start a terminated instance: %v, want permanent", err)
	}
	if err := e.c.Terminate(ctx, "i-0123456789abcdef0"); err != nil {
		t.Fatalf("terminate unknown: %v", err)
	}
	if _, err := e.c.DescribeInstance(ctx, "i-0123456789abcdef0"); !IsNotFound(err) {
		t.Fatalf("describe unknown: %v", err)
	}
	// A terminated instance is not returned for its token: a new launch.
	spec := e.spec(inst.Tags[TagClientToken])
	again, err := e.c.Launch(ctx, spec)
	if err != nil || again.ID == inst.ID {
		t.Fatalf("launch after terminate: %+v %v", again, err)
	}
	_ = e.c.Terminate(ctx, again.ID)
}

func TestLaunchPermanentErrors(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	spec := e.spec(unique("bad"))
	spec.SubnetID = "subnet-doesnotexist"
	_, err := e.c.Launch(ctx, spec)
	if !IsPermanent(err) {
		t.Fatalf("bad subnet: %v, want permanent", err)
	}
	spec = e.spec("")
	if _, err := e.c.Launch(ctx, spec); !IsPermanent(err) {
		t.Fatalf("no token: %v", err)
	}
}
