package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"zcloud/activities"
	"zcloud/cloud/awsclient"
	"zcloud/cloud/ec2"
	"zcloud/internal/testenv"
	"zcloud/workflows"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// ebsEvent is one EC2 call the worker made, seen by the proxy, with the
// pool's state at that instant (checked before DetachVolume and
// DeleteVolume are forwarded).
type ebsEvent struct {
	At       time.Time
	Action   string
	VolumeID string
	// Pool state when the call arrived (Detach/Delete only).
	InPool      bool // the volume's device was still in the pool
	Resilvering bool
	Healthy     bool
	Status      string
}

// ebsSeam stands between the worker and moto_server. It is the tests'
// volume-to-device mapping: when moto attaches a volume to the instance the
// seam creates a sparse file of the volume's size and the by-id link
// <devdir>/nvme-Amazon_Elastic_Block_Store_vol<id> to it (removed on
// detach, grown on ModifyVolume), so real zfs-fuse pools run on "EBS
// volumes". It also records every EBS call with a timestamp, counts
// attaches, and snapshots the pool before each detach and delete.
// Production code never sees it: the worker only has an endpoint URL and
// a device directory in its config.
type ebsSeam struct {
	t       *testing.T
	moto    *testenv.Moto
	api     *sdk.Client // straight to moto
	srv     *httptest.Server
	devDir  string
	fileDir string
	pool    string

	mu      sync.Mutex
	events  []ebsEvent
	attach  map[string]int
	holdN   int                      // hold the device node of the next N attached volumes
	held    map[string]chan struct{} // volume -> release
	created []string
}

func newEBSSeam(t *testing.T) *ebsSeam {
	t.Helper()
	m := testenv.SharedMoto(t)
	api, err := awsclient.EC2(context.Background(), awsclient.Config{Region: m.Region, Endpoint: m.Endpoint, AccessKeyID: "testing", SecretAccessKey: "testing"})
	if err != nil {
		t.Fatal(err)
	}
	x := &ebsSeam{t: t, moto: m, api: api, devDir: filepath.Join(t.TempDir(), "by-id"), fileDir: t.TempDir(),
		attach: map[string]int{}, held: map[string]chan struct{}{}}
	if err := os.MkdirAll(x.devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	x.srv = httptest.NewServer(x)
	t.Cleanup(x.srv.Close)
	return x
}

var volumeIDRe = regexp.MustCompile(`<volumeId>(vol-[0-9a-f]+)</volumeId>`)

func (x *ebsSeam) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	action, vol := form.Get("Action"), form.Get("VolumeId")
	if action == "DetachVolume" || action == "DeleteVolume" {
		x.record(x.poolEvent(action, vol))
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, x.moto.Endpoint+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), 502)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		switch action {
		case "CreateVolume":
			if m := volumeIDRe.FindSubmatch(out); m != nil {
				vol = string(m[1])
				x.mu.Lock()
				x.created = append(x.created, vol)
				x.mu.Unlock()
			}
			x.record(ebsEvent{Action: action, VolumeID: vol})
		case "AttachVolume":
			x.mu.Lock()
			x.attach[vol]++
			var release chan struct{}
			if x.holdN > 0 {
				x.holdN--
				release = make(chan struct{})
				x.held[vol] = release
			}
			x.mu.Unlock()
			x.record(ebsEvent{Action: action, VolumeID: vol})
			go x.materialize(vol, release)
		case "DetachVolume":
			os.Remove(x.link(vol))
		case "DeleteVolume":
			os.Remove(x.file(vol))
		case "ModifyVolume":
			if size, err := strconv.ParseInt(form.Get("Size"), 10, 64); err == nil {
				if err := os.Truncate(x.file(vol), size<<30); err != nil {
					x.t.Logf("seam: grow %s: %v", vol, err)
				}
			}
			x.record(ebsEvent{Action: action, VolumeID: vol})
		}
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

func (x *ebsSeam) link(vol string) string { return ec2.NVMeDevicePath(vol, x.devDir) }
func (x *ebsSeam) file(vol string) string { return filepath.Join(x.fileDir, vol+".img") }

// materialize makes the attached volume's device appear (after release,
// when held), like udev does on the instance.
func (x *ebsSeam) materialize(vol string, release chan struct{}) {
	if release != nil {
		<-release
	}
	out, err := x.api.DescribeVolumes(context.Background(), &sdk.DescribeVolumesInput{VolumeIds: []string{vol}})
	if err != nil || len(out.Volumes) != 1 {
		x.t.Logf("seam: describe %s: %v", vol, err)
		return
	}
	size := int64(aws.ToInt32(out.Volumes[0].Size)) << 30
	if _, err := os.Stat(x.file(vol)); err != nil {
		if err := testenv.CreateSparse(x.file(vol), size); err != nil {
			x.t.Logf("seam: %v", err)
			return
		}
	}
	if err := os.Symlink(x.file(vol), x.link(vol)); err != nil && !os.IsExist(err) {
		x.t.Logf("seam: %v", err)
	}
}

// holdNext holds back the device node of the next n attached volumes.
func (x *ebsSeam) holdNext(n int) {
	x.mu.Lock()
	x.holdN = n
	x.mu.Unlock()
}

// heldVolumes lists volumes attached in moto whose device is held back.
func (x *ebsSeam) heldVolumes() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for v := range x.held {
		out = append(out, v)
	}
	return out
}

func (x *ebsSeam) release(vol string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c, ok := x.held[vol]; ok {
		close(c)
		delete(x.held, vol)
	}
}

func (x *ebsSeam) record(e ebsEvent) {
	e.At = time.Now()
	x.mu.Lock()
	x.events = append(x.events, e)
	x.mu.Unlock()
}

func (x *ebsSeam) eventList() []ebsEvent {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]ebsEvent(nil), x.events...)
}

func (x *ebsSeam) attachCount(vol string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.attach[vol]
}

func (x *ebsSeam) createdVolumes() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.created...)
}

// poolEvent snapshots the pool (zpool status, run here: the "instance"
// is this machine) when a detach or delete of vol arrives.
func (x *ebsSeam) poolEvent(action, vol string) ebsEvent {
	e := ebsEvent{Action: action, VolumeID: vol}
	st, raw, err := localPoolStatus(x.pool)
	if err != nil {
		e.Status = "zpool status failed: " + err.Error()
		return e
	}
	e.Status = raw
	e.Healthy = st.Healthy()
	e.Resilvering = st.Scan.InProgress()
	key := strings.ReplaceAll(vol, "-", "")
	st.Walk(func(v *zfsexec.Vdev) {
		if strings.HasPrefix(v.Name, "replacing") {
			e.Resilvering = true
		}
		if strings.HasSuffix(v.Name, key) {
			e.InPool = true
		}
	})
	return e
}

func localPoolStatus(pool string) (zfsexec.PoolStatus, string, error) {
	out, err := exec.Command("zpool", "status", pool).CombinedOutput()
	if err != nil {
		return zfsexec.PoolStatus{}, string(out), fmt.Errorf("%v: %s", err, out)
	}
	zp := zfsexec.Zpool{R: zfsexec.NewLocal(zap.NewNop())}
	st, err := zp.Status(context.Background(), mustPool(pool))
	return st, string(out), err
}

// launchInstance starts an instance in moto for the pool's volumes.
func (x *ebsSeam) launchInstance() (id, az string) {
	x.t.Helper()
	out, err := x.api.RunInstances(context.Background(), &sdk.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"),
		InstanceType: types.InstanceTypeM7iLarge, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		x.t.Fatal(err)
	}
	inst := out.Instances[0]
	return aws.ToString(inst.InstanceId), aws.ToString(inst.Placement.AvailabilityZone)
}

// poolVolumes lists live volumes in moto tagged as pool's.
func (x *ebsSeam) poolVolumes(pool string) []types.Volume {
	x.t.Helper()
	out, err := x.api.DescribeVolumes(context.Background(), &sdk.DescribeVolumesInput{
		Filters: []types.Filter{{Name: aws.String("tag:" + activities.TagPool), Values: []string{pool}}}})
	if err != nil {
		x.t.Fatal(err)
	}
	var live []types.Volume
	for _, v := range out.Volumes {
		if v.State != types.VolumeStateDeleting && v.State != types.VolumeStateDeleted {
			live = append(live, v)
		}
	}
	return live
}

// volumeExists says whether moto still has vol.
func (x *ebsSeam) volumeExists(vol string) bool {
	out, err := x.api.DescribeVolumes(context.Background(), &sdk.DescribeVolumesInput{VolumeIds: []string{vol}})
	return err == nil && len(out.Volumes) == 1 && out.Volumes[0].State != types.VolumeStateDeleted
}

func tagOf(v types.Volume, k string) string {
	for _, t := range v.Tags {
		if aws.ToString(t.Key) == k {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// poolEnv is a pool test's world.
type poolEnv struct {
	*env
	seam     *ebsSeam
	pool     string
	instance string
	az       string
}

type poolOpts struct {
	vdevs, width int
	redundancy   string
	sizeGiB      int
	parallel     int
	heartbeat    string
	instanceType string
	// scrubSchedule, when set, is the pool's scrub_schedule (cron).
	scrubSchedule string
}

func newPoolEnv(t *testing.T, o poolOpts) *poolEnv {
	t.Helper()
	testenv.EnsureZFS(t)
	e := &env{t: t, temporal: testenv.SharedTemporal(t), sshd: testenv.SharedSSHD(t), queue: testenv.RandomName("q-")}
	cl, err := client.Dial(client.Options{HostPort: e.temporal.HostPort, Namespace: e.temporal.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.client = cl
	pe := &poolEnv{env: e, seam: newEBSSeam(t), pool: testenv.RandomName("zp")}
	pe.seam.pool = pe.pool
	pe.instance, pe.az = pe.seam.launchInstance()
	if o.heartbeat == "" {
		o.heartbeat = "5s"
	}
	if o.parallel == 0 {
		o.parallel = 1
	}
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
log: {level: info}
targets:
  inst:
    transport: ssh
    ssh: {host: 127.0.0.1, port: %d, user: %s, identity_file: %q, host_key: %q, connect_timeout: 5s}
pools:
  - name: %s
    target: inst
    instance_id: %s
    availability_zone: %s
    aws: {region: %s, endpoint: %q}
    layout: {vdevs: %d, width: %d, redundancy: %s, volume_type: gp3, volume_size_gib: %d}
    tags: {project: zcloud-e2e}
    device_dir: %q
    parallel_vdevs: %d
    poll_interval: 200ms
    heartbeat_timeout: %s
`, e.temporal.HostPort, e.temporal.Namespace, e.queue, e.sshd.Port, e.sshd.User, e.sshd.ClientKeyPath, e.sshd.HostKey,
		pe.pool, pe.instance, pe.az, pe.seam.moto.Region, pe.seam.srv.URL, o.vdevs, o.width, o.redundancy, o.sizeGiB,
		pe.seam.devDir, o.parallel, o.heartbeat)
	if o.scrubSchedule != "" {
		y += fmt.Sprintf("    scrub_schedule: %q\n", o.scrubSchedule)
	}
	e.useConfig(y)
	t.Cleanup(func() {
		// Leave no pool behind, whatever the test did (zfs-fuse may say
		// "busy" for a moment: DestroyPool retries).
		testenv.DestroyPool(t, pe.pool)
	})
	return pe
}

// start starts a pool workflow with the CLI's id.
func (pe *poolEnv) start(name string, in any) client.WorkflowRun {
	pe.t.Helper()
	run, err := pe.client.ExecuteWorkflow(pe.ctx(time.Minute), client.StartWorkflowOptions{
		ID: workflows.PoolWorkflowID(pe.pool) + "/" + testenv.RandomName(""), TaskQueue: pe.queue}, name, in)
	if err != nil {
		pe.t.Fatal(err)
	}
	return run
}

func (pe *poolEnv) run(name string, in any, d time.Duration) workflows.PoolResult {
	pe.t.Helper()
	run := pe.start(name, in)
	var res workflows.PoolResult
	if err := run.Get(pe.ctx(d), &res); err != nil {
		pe.t.Fatalf("%s: %v", name, err)
	}
	return res
}

func (pe *poolEnv) status(run client.WorkflowRun) (workflows.PoolStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	v, err := pe.client.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery)
	if err != nil {
		return workflows.PoolStatus{}, err
	}
	var st workflows.PoolStatus
	return st, v.Get(&st)
}

// pendingActivity returns the type names of the workflow's pending activities.
func (pe *poolEnv) pendingActivities(run client.WorkflowRun) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	desc, err := pe.client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		return nil
	}
	var out []string
	for _, pa := range desc.GetPendingActivities() {
		out = append(out, pa.GetActivityType().GetName())
	}
	return out
}

// activityAttempts maps activity type to its highest attempt in the history.
func (pe *poolEnv) activityAttempts(run client.WorkflowRun) map[string]int32 {
	scheduled := map[int64]string{}
	max := map[string]int32{}
	it := pe.client.GetWorkflowHistory(pe.ctx(10*time.Second), run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			pe.t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			name := scheduled[a.GetScheduledEventId()]
			if a.GetAttempt() > max[name] {
				max[name] = a.GetAttempt()
			}
		}
	}
	return max
}

// importPool imports the pool from the seam's device directory.
func (pe *poolEnv) importPool() {
	pe.t.Helper()
	testenv.MustZFS(pe.t, "zpool", "import", "-d", pe.seam.devDir, pe.pool)
}

func poolSize(t *testing.T, pool string) uint64 {
	t.Helper()
	zp := zfsexec.Zpool{R: zfsexec.NewLocal(zap.NewNop())}
	info, err := zp.List(context.Background(), mustPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	return info.Size
}

func mustPool(name string) zfsname.Pool {
	p, err := zfsname.ParsePool(name)
	if err != nil {
		panic(err)
	}
	return p
}

// zpoolList runs zpool list NAME (an error when the pool is not imported).
func zpoolList(name string) (string, error) {
	out, err := exec.Command("zpool", "list", "-H", name).CombinedOutput()
	return string(out), err
}

// pendingAttempt is the attempt of the pending activity of type name that
// has started (0: none running).
func (pe *poolEnv) pendingAttempt(run client.WorkflowRun, name string) int32 {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	desc, err := pe.client.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		return 0
	}
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetActivityType().GetName() == name && pa.GetState() == enums.PENDING_ACTIVITY_STATE_STARTED {
			return pa.GetAttempt()
		}
	}
	return 0
}
