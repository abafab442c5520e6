package ec2

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"zcloud/cloud/ec2/ec2types"
	"zcloud/poolplan"
)

func (e *motoEnv) runningInstance(t *testing.T) ec2types.Instance {
	t.Helper()
	ctx := testCtx(t)
	inst, err := e.c.Launch(ctx, e.spec(unique("vols")))
	if err != nil {
		t.Fatal(err)
	}
	if inst, err = e.c.WaitRunning(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Terminate(testCtx(t), inst.ID) })
	return inst
}

func TestVolumeCreateAttachDetachDeleteAreIdempotent(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	inst := e.runningInstance(t)
	pool := unique("pool")
	spec := VolumeSpec{AvailabilityZone: inst.AvailabilityZone, Type: poolplan.GP3, SizeGiB: 10, IOPS: 3000, Throughput: 125,
		Tags: map[string]string{"zcloud:pool": pool}, ClientToken: unique("vol")}
	v, err := e.c.CreateVolume(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if v.State != VolumeAvailable || v.SizeGiB != 10 || v.Type != poolplan.GP3 || v.Tags["zcloud:pool"] != pool {
		t.Fatalf("created %+v", v)
	}
	again, err := e.c.CreateVolume(ctx, spec)
	if err != nil || again.ID != v.ID {
		t.Fatalf("create with the same token: %s %v, want %s", again.ID, err, v.ID)
	}
	found, err := e.c.FindVolumesByTag(ctx, map[string]string{"zcloud:pool": pool})
	if err != nil || len(found) != 1 || found[0].ID != v.ID {
		t.Fatalf("FindVolumesByTag: %+v %v", found, err)
	}

	a, err := e.c.AttachVolume(ctx, v.ID, inst.ID)
	if err != nil || a.State != AttachAttached || a.Device != "/dev/sdf" {
		t.Fatalf("attach: %+v %v", a, err)
	}
	a2, err := e.c.AttachVolume(ctx, v.ID, inst.ID)
	if err != nil || a2.Device != a.Device {
		t.Fatalf("attach again: %+v %v", a2, err)
	}
	// A second volume gets the next free name.
	spec2 := spec
	spec2.ClientToken = unique("vol")
	v2, err := e.c.CreateVolume(ctx, spec2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.c.AttachVolume(ctx, v2.ID, inst.ID)
	if err != nil || b.Device != "/dev/sdg" {
		t.Fatalf("second attach: %+v %v", b, err)
	}
	// Attached elsewhere: permanent, never stolen.
	other := e.runningInstance(t)
	if _, err := e.c.AttachVolume(ctx, v.ID, other.ID); !IsPermanent(err) {
		t.Fatalf("attach to a second instance: %v", err)
	}
	// Deleting an attached volume is refused (retryable: detach first).
	if err := e.c.DeleteVolume(ctx, v.ID, nil); !IsRetryable(err) {
		t.Fatalf("delete attached: %v", err)
	}

	for range 2 {
		if err := e.c.DetachVolume(ctx, v.ID, inst.ID, false); err != nil {
			t.Fatalf("detach: %v", err)
		}
	}
	if got, _ := e.c.DescribeVolume(ctx, v.ID); got.State != VolumeAvailable {
		t.Fatalf("after detach: %+v", got)
	}
	// Guarded delete: wrong pool tag refused.
	if err := e.c.DeleteVolume(ctx, v.ID, map[string]string{"zcloud:pool": "other"}); !IsPermanent(err) {
		t.Fatalf("delete with the wrong pool tag: %v", err)
	}
	for range 2 {
		if err := e.c.DeleteVolume(ctx, v.ID, map[string]string{"zcloud:pool": pool}); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := e.c.DescribeVolume(ctx, v.ID); !IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
	if err := e.c.DetachVolume(ctx, v.ID, inst.ID, false); err != nil {
		t.Fatalf("detach a deleted volume: %v", err)
	}
}

func TestCreateVolumeEnforcesEBSLimits(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	for _, s := range []VolumeSpec{
		{Type: poolplan.GP3, SizeGiB: 70000},
		{Type: poolplan.GP2, SizeGiB: 20000},
		{Type: poolplan.ST1, SizeGiB: 10},
		{Type: poolplan.GP2, SizeGiB: 10, IOPS: 3000},
	} {
		s.AvailabilityZone, s.ClientToken = e.az, unique("lim")
		_, err := e.c.CreateVolume(ctx, s)
		var fe *poolplan.FieldError
		if !IsPermanent(err) || !errors.As(err, &fe) {
			t.Errorf("%+v: %v, want a permanent limit error", s, err)
		}
	}
}

func TestModifyVolumeEnforcesTheRateRule(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	v, err := e.c.CreateVolume(ctx, VolumeSpec{AvailabilityZone: e.az, Type: poolplan.GP3, SizeGiB: 10, ClientToken: unique("mod")})
	if err != nil {
		t.Fatal(err)
	}
	var history []poolplan.Modification
	for i, size := range []int64{11, 12, 13, 14} {
		m, err := e.c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: size, History: history, Now: time.Now()})
		if err != nil {
			t.Fatalf("modification %d: %v", i+1, err)
		}
		if m.TargetSizeGiB != size {
			t.Fatalf("modification %d: %+v", i+1, m)
		}
		if m, err = e.c.WaitModification(ctx, v.ID, true); err != nil || m.State != poolplan.ModCompleted {
			t.Fatalf("wait %d: %+v %v", i+1, m, err)
		}
		history = append(history, m.Record())
	}
	first := history[0].Start
	// The fifth within 24 h is refused by zcloud itself (moto would allow it).
	_, err = e.c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 15, History: history, Now: time.Now()})
	var le *ModifyLimitError
	if !errors.As(err, &le) || !le.NotBefore.Equal(first.Add(24*time.Hour)) || IsRetryable(err) {
		t.Fatalf("5th modification: %v, want a limit error until %v", err, first.Add(24*time.Hour))
	}
	if got, _ := e.c.DescribeVolume(ctx, v.ID); got.SizeGiB != 14 {
		t.Fatalf("size changed to %d despite the refusal", got.SizeGiB)
	}
	// After the first one leaves the window it goes through.
	now := first.Add(24 * time.Hour)
	if m, err := e.c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 15, History: history, Now: now}); err != nil || m.TargetSizeGiB != 15 {
		t.Fatalf("after the window: %+v %v", m, err)
	}
	// Shrink and beyond-max are refused; at-target is a no-op.
	if _, err := e.c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 5, Now: now}); !IsPermanent(err) {
		t.Fatalf("shrink: %v", err)
	}
	if _, err := e.c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 70000, Now: now}); !IsPermanent(err) {
		t.Fatalf("beyond gp3 max: %v", err)
	}
	if m, err := e.c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 15, Now: now.Add(48 * time.Hour)}); err != nil || !m.Unchanged {
		t.Fatalf("already at size: %+v %v", m, err)
	}
}

func TestNVMeDevicePathSeam(t *testing.T) {
	if got := NVMeDevicePath("vol-0abc123", ""); got != "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc123" {
		t.Fatalf("default: %s", got)
	}
	// Tests map volume ids to sparse files through a directory of links.
	dir := t.TempDir()
	sparse := filepath.Join(t.TempDir(), "disk0")
	if err := os.WriteFile(sparse, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 64<<20); err != nil {
		t.Fatal(err)
	}
	p := NVMeDevicePath("vol-0abc123", dir)
	if err := os.Symlink(sparse, p); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Size() != 64<<20 {
		t.Fatalf("seam: %v %v", fi, err)
	}
}

func TestFreeDeviceName(t *testing.T) {
	inst := ec2types.Instance{Devices: map[string]string{"/dev/xvda": "vol-root", "/dev/sdf": "vol-1", "/dev/xvdg": "vol-2"}}
	if d, _ := FreeDeviceName(inst); d != "/dev/sdh" {
		t.Fatalf("got %s, want /dev/sdh (xvdg is sdg)", d)
	}
	full := ec2types.Instance{Devices: map[string]string{}}
	for _, d := range deviceNames() {
		full.Devices[d] = "vol"
	}
	if _, ok := FreeDeviceName(full); ok {
		t.Fatal("found a name on a full instance")
	}
	if n := len(deviceNames()); n < 128 {
		t.Fatalf("only %d device names; dedicated-limit types take 128", n)
	}
}

// modifyingFake wraps moto and reports the volume's latest modification as
// still "modifying", which moto never does (it completes at once).
type modifyingFake struct {
	API
	target int32
}

func (f modifyingFake) DescribeVolumesModifications(_ context.Context, in *sdk.DescribeVolumesModificationsInput, _ ...func(*sdk.Options)) (*sdk.DescribeVolumesModificationsOutput, error) {
	return &sdk.DescribeVolumesModificationsOutput{VolumesModifications: []types.VolumeModification{{
		VolumeId: aws.String(in.VolumeIds[0]), ModificationState: types.VolumeModificationStateModifying,
		TargetSize: aws.Int32(f.target), StartTime: aws.Time(time.Now().Add(-time.Minute)), Progress: aws.Int64(40),
	}}}, nil
}

func TestModifyVolumeWaitsForTheRunningModification(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	v, err := e.c.CreateVolume(ctx, VolumeSpec{AvailabilityZone: e.az, Type: poolplan.GP3, SizeGiB: 10, ClientToken: unique("busy")})
	if err != nil {
		t.Fatal(err)
	}
	c := New(modifyingFake{API: e.api, target: 20}, fastOptions())
	// A different target while one runs: retryable, nothing sent.
	if _, err := c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 30, Now: time.Now()}); !IsRetryable(err) || IsPermanent(err) {
		t.Fatalf("while modifying: %v", err)
	}
	// The same target (a retried activity): the running one is returned.
	m, err := c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 20, Now: time.Now()})
	if err != nil || m.State != poolplan.ModModifying || m.TargetSizeGiB != 20 {
		t.Fatalf("retry of the same: %+v %v", m, err)
	}
	if got, _ := e.c.DescribeVolume(ctx, v.ID); got.SizeGiB != 10 {
		t.Fatalf("moto saw a modification: %d GiB", got.SizeGiB)
	}
	// The waiter keeps polling while it is modifying, until ctx ends.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.WaitModification(short, v.ID, false); !IsRetryable(err) {
		t.Fatalf("wait on a stuck modification: %v", err)
	}
}

// deviceTakenFake wraps moto and rejects the first attach under a device name
// as AWS does when a concurrent attach took it (moto never checks).
type deviceTakenFake struct {
	API
	taken string
	tried []string
}

func (f *deviceTakenFake) AttachVolume(ctx context.Context, in *sdk.AttachVolumeInput, o ...func(*sdk.Options)) (*sdk.AttachVolumeOutput, error) {
	f.tried = append(f.tried, aws.ToString(in.Device))
	if aws.ToString(in.Device) == f.taken {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterValue", Message: "Attachment point " + f.taken + " is already in use"}
	}
	return f.API.AttachVolume(ctx, in, o...)
}

func TestAttachRetriesATakenDeviceName(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	inst := e.runningInstance(t)
	v, err := e.c.CreateVolume(ctx, VolumeSpec{AvailabilityZone: inst.AvailabilityZone, Type: poolplan.GP3, SizeGiB: 1, ClientToken: unique("taken")})
	if err != nil {
		t.Fatal(err)
	}
	f := &deviceTakenFake{API: e.api, taken: "/dev/sdf"}
	a, err := New(f, fastOptions()).AttachVolume(ctx, v.ID, inst.ID)
	if err != nil || a.Device != "/dev/sdg" || len(f.tried) != 2 {
		t.Fatalf("attach: %+v %v after %v", a, err, f.tried)
	}
}

func TestModifyKeepsProvisionedIOPS(t *testing.T) {
	e := newMotoEnv(t)
	ctx := testCtx(t)
	v, err := e.c.CreateVolume(ctx, VolumeSpec{AvailabilityZone: e.az, Type: poolplan.IO2, SizeGiB: 10, IOPS: 1000, ClientToken: unique("io2")})
	if err != nil {
		t.Fatal(err)
	}
	// Growing an io2 volume without restating its IOPS is fine...
	if m, err := e.c.ModifyVolume(ctx, ModifySpec{VolumeID: v.ID, SizeGiB: 20, Now: time.Now()}); err != nil || m.TargetSizeGiB != 20 {
		t.Fatalf("grow io2: %+v %v", m, err)
	}
	// ...and gp2 → gp3 takes gp3's defaults, not gp2's derived IOPS.
	g, err := e.c.CreateVolume(ctx, VolumeSpec{AvailabilityZone: e.az, Type: poolplan.GP2, SizeGiB: 10, ClientToken: unique("gp2")})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := e.c.ModifyVolume(ctx, ModifySpec{VolumeID: g.ID, Type: poolplan.GP3, Now: time.Now()}); err != nil || m.Unchanged {
		t.Fatalf("gp2 → gp3: %+v %v", m, err)
	}
}
