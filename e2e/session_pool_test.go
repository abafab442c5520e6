package e2e

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/client"

	"zcloud/activities"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// mountEnv is a world where sessions mount a pool made by zcloud pool
// create: the session env (Temporal, sshd, a source pool, moto) and the
// EBS seam, which turns the volumes moto attaches into device links of
// real zfs-fuse files (the pool's and the session's EC2 calls both go
// through it, so it sees every attach).
type mountEnv struct {
	*sessEnv
	seam *ebsSeam
	pool string
	az   string
}

func newMountEnv(t *testing.T) *mountEnv {
	t.Helper()
	s := newSessEnv(t)
	m := &mountEnv{sessEnv: s, seam: newEBSSeam(t), pool: testenv.RandomName("zp")}
	m.seam.pool = m.pool
	inst, az := m.seam.launchInstance()
	m.az = az
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
log: {level: debug}
keys: {dir: %q}
targets:
  inst:
    transport: ssh
    ssh: {host: 127.0.0.1, port: %d, user: %s, identity_file: %q, host_key: %q, connect_timeout: 5s}
  nightly:
    kind: ec2
    transport: ssh
    ssh: {user: %s, identity_file: %q, connect_timeout: 5s}
    ec2:
      region: %s
      endpoint: %q
      ami: ami-0123456789abcdef0
      instance_type: t3.micro
      bootstrap: {skip: true}
      tags: {zcloud-test: %s}
      pool: %s
      prices: {t3.micro: 0.0104}
      imds_endpoint: http://127.0.0.1:1
      poll_interval: 100ms
      ssh_timeout: 30s
pools:
  - name: %s
    target: inst
    instance_id: %s
    availability_zone: %s
    aws: {region: %s, endpoint: %q}
    layout: {vdevs: 1, width: 2, redundancy: mirror, volume_type: gp3, volume_size_gib: 1}
    device_dir: %q
    poll_interval: 200ms
    heartbeat_timeout: 5s
replications:
  - {source: %s/data1, target: nightly, target_dataset: %s/backup/data1}
`, s.temporal.HostPort, s.temporal.Namespace, s.queue, s.keyDir,
		s.sshd.Port, s.sshd.User, s.sshd.ClientKeyPath, s.sshd.HostKey,
		s.sshd.User, s.sshd.ClientKeyPath, m.seam.moto.Region, m.seam.srv.URL, s.tag, m.pool,
		m.pool, inst, az, m.seam.moto.Region, m.seam.srv.URL, m.seam.devDir,
		s.src.Pool, m.pool)
	s.useConfig(y)
	t.Cleanup(func() { testenv.DestroyPool(t, m.pool) })
	return m
}

// attachedSince lists the volumes the seam saw attached after event i.
func (m *mountEnv) attachedSince(i int) []string {
	var out []string
	for _, e := range m.seam.eventList()[i:] {
		if e.Action == "AttachVolume" {
			out = append(out, e.VolumeID)
		}
	}
	slices.Sort(out)
	return out
}

// poolOp runs a pool workflow under the pool's id; record names its
// history for the replay test ("": none).
func (m *mountEnv) poolOp(name string, in any, d time.Duration, record string) workflows.PoolResult {
	m.t.Helper()
	run, err := m.client.ExecuteWorkflow(m.ctx(time.Minute), client.StartWorkflowOptions{ID: workflows.PoolWorkflowID(m.pool), TaskQueue: m.queue}, name, in)
	if err != nil {
		m.t.Fatal(err)
	}
	var res workflows.PoolResult
	if err := run.Get(m.ctx(d), &res); err != nil {
		m.t.Fatalf("%s: %v", name, err)
	}
	if record != "" {
		m.replayHistory(run.GetID(), record)
	}
	return res
}

// liveVolumes maps the pool's live volumes to their attachments.
func (m *mountEnv) liveVolumes() map[string][]types.VolumeAttachment {
	out := map[string][]types.VolumeAttachment{}
	for _, v := range m.seam.poolVolumes(m.pool) {
		out[aws.ToString(v.VolumeId)] = v.Attachments
	}
	return out
}

// A session after a rolling grow attaches exactly the pool's current
// volumes (the replacements), never a deleted one; while it holds the
// pool a grow is refused naming it; at the end the volumes are detached.
func TestSessionAfterRollingGrowAttachesThePoolsCurrentVolumes(t *testing.T) {
	m := newMountEnv(t)
	m.startWorker(m.cfg, m.seams)

	create := m.poolOp(workflows.PoolCreateName, workflows.PoolInput{Pool: m.pool}, 3*time.Minute, "")
	first := map[string]bool{}
	for _, v := range create.Volumes {
		first[v] = true
	}
	for id, att := range m.liveVolumes() {
		if len(att) != 0 {
			t.Fatalf("after create, volume %s is still attached (%+v): a pool that sessions mount is handed back detached", id, att)
		}
	}
	grow := m.poolOp(workflows.PoolGrowName, workflows.PoolGrowInput{Pool: m.pool, Mode: workflows.GrowRollingReplace, SizeGiB: 2}, 5*time.Minute, "pool-grow-hands-back")
	var current []string
	for _, v := range grow.Volumes {
		if first[v] {
			t.Fatalf("grow kept old volume %s", v)
		}
		current = append(current, v)
	}
	slices.Sort(current)
	live := m.liveVolumes()
	if len(live) != 2 {
		t.Fatalf("after the grow moto has %d live volumes of the pool, want 2: %v", len(live), live)
	}
	for id, att := range live {
		if !slices.Contains(current, id) || len(att) != 0 {
			t.Fatalf("after the grow: volume %s attachments %+v (current %v)", id, att, current)
		}
	}
	for v := range first {
		if m.seam.volumeExists(v) {
			t.Fatalf("old volume %s still exists after the grow", v)
		}
	}

	mark := len(m.seam.eventList())
	m.holdAt("session-imported", 0)
	run := m.startSession()
	m.waitHeld("session-imported")

	// The session holds pool/NAME: a grow is refused, naming it.
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "pool", "grow", m.pool, "--size", "3", "--mode", "in-place", "--no-wait", "--config", m.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "a "+workflows.PoolSessionName+" started by "+run.GetID()) {
		t.Fatalf("pool grow during the session: err %v, output:\n%s\nwant a refusal naming the session %s", err, out, run.GetID())
	}
	t.Logf("grow refused: %s", strings.TrimSpace(string(out)))
	m.release("session-imported")

	var res workflows.SessionResult
	if err := run.Get(m.ctx(4*time.Minute), &res); err != nil {
		t.Fatalf("session: %v\nlogs:\n%s", err, tail(m.logs.String(), 4000))
	}
	if d := res.Status.Datasets; len(d) != 1 || d[0].State != "done" {
		t.Fatalf("datasets %+v", d)
	}
	if in := res.Status.Instances; len(in) != 1 || !slices.Equal(slices.Sorted(slices.Values(in[0].Volumes)), current) {
		t.Errorf("session status instances %+v, want one with the pool volumes %v", in, current)
	}
	attached := m.attachedSince(mark)
	if !slices.Equal(attached, current) {
		t.Fatalf("the session attached %v, want exactly the pool's current volumes %v", attached, current)
	}
	for _, v := range attached {
		if first[v] {
			t.Fatalf("the session attached deleted volume %s", v)
		}
	}
	insts := m.assertNoneRunning(m.moto, 1)
	for id, att := range m.liveVolumes() {
		if len(att) != 0 {
			t.Errorf("after the session, volume %s is still attached: %+v", id, att)
		}
	}
	if len(insts) == 1 && insts[0].AvailabilityZone != m.az {
		t.Errorf("session instance in %s, the pool's volumes in %s", insts[0].AvailabilityZone, m.az)
	}
	m.replayHistory(run.GetID(), "session-mounts-pool")

	// A pool operation after the session mounts the pool again (and
	// hands it back); then attach it here by hand and compare the data.
	scrub := m.poolOp(workflows.PoolScrubName, workflows.PoolInput{Pool: m.pool}, 3*time.Minute, "")
	if scrub.Scrub == nil || !scrub.Scrub.Clean() {
		t.Fatalf("scrub after the session: %+v", scrub.Scrub)
	}
	for i, v := range current {
		if _, err := m.seam.api.AttachVolume(m.ctx(time.Minute), &sdk.AttachVolumeInput{VolumeId: aws.String(v),
			InstanceId: aws.String(m.cfg.Pools[0].InstanceID), Device: aws.String(fmt.Sprintf("/dev/sd%c", 'p'+i))}); err != nil {
			t.Fatal(err)
		}
		m.seam.materialize(v, nil) // the attach went straight to moto, not through the seam
	}
	testenv.MustZFS(t, "zpool", "import", "-d", m.seam.devDir, m.pool)
	assertSameTree(t, "/"+m.src.Pool.String()+"/data1", "/"+m.pool+"/backup/data1")
}

// A pool volume in another availability zone stops the session before
// anything is launched, naming the volume and both zones.
func TestSessionRefusesPoolVolumesInAnotherZone(t *testing.T) {
	m := newMountEnv(t)
	other := "us-east-1b"
	if m.az == other {
		other = "us-east-1c"
	}
	out, err := m.seam.api.CreateVolume(m.ctx(time.Minute), &sdk.CreateVolumeInput{AvailabilityZone: aws.String(other), Size: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{
			{Key: aws.String(activities.TagPool), Value: aws.String(m.pool)}, {Key: aws.String(activities.TagSlot), Value: aws.String("v0/d0")},
			{Key: aws.String(activities.TagState), Value: aws.String(activities.StateActive)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	vol := aws.ToString(out.VolumeId)
	m.startWorker(m.cfg, m.seams)
	run := m.startSession()
	ae := failed(t, run, m.ctx(2*time.Minute))
	if ae.Type() != contract.ErrTypeWrongZone || !strings.Contains(ae.Error(), vol) || !strings.Contains(ae.Error(), other) || !strings.Contains(ae.Error(), m.az) {
		t.Fatalf("session error %s: %v; want %s naming %s, %s and %s", ae.Type(), ae, contract.ErrTypeWrongZone, vol, other, m.az)
	}
	m.assertNoneRunning(m.moto, 0)
	if n := len(m.attachedSince(0)); n != 0 {
		t.Errorf("%d attaches, want none", n)
	}
}

// A session started while a grow holds the pool fails at once, naming the
// grow, and launches nothing.
func TestSessionRefusedWhileAGrowHoldsThePool(t *testing.T) {
	m := newMountEnv(t)
	m.startWorker(m.cfg, m.seams)
	m.holdAt("pool-mount", 0)
	grow, err := m.client.ExecuteWorkflow(m.ctx(time.Minute), client.StartWorkflowOptions{ID: workflows.PoolWorkflowID(m.pool), TaskQueue: m.queue},
		workflows.PoolGrowName, workflows.PoolGrowInput{Pool: m.pool, Mode: workflows.GrowRollingReplace, SizeGiB: 2})
	if err != nil {
		t.Fatal(err)
	}
	m.waitHeld("pool-mount") // the grow runs under pool/NAME now
	run := m.startSession()
	ae := failed(t, run, m.ctx(2*time.Minute))
	if ae.Type() != contract.ErrTypePoolBusy || !strings.Contains(ae.Error(), "a grow holds it") || !strings.Contains(ae.Error(), grow.GetRunID()) {
		t.Fatalf("session error %s: %v; want %s naming the grow run %s", ae.Type(), ae, contract.ErrTypePoolBusy, grow.GetRunID())
	}
	m.assertNoneRunning(m.moto, 0)
	m.release("pool-mount")
	// The pool has no volumes: the grow, let go, fails saying so.
	if err := grow.Get(m.ctx(time.Minute), nil); err == nil || !strings.Contains(err.Error(), "has no volumes") {
		t.Errorf("grow of a pool without volumes: %v", err)
	}
}
