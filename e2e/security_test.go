package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/crypto/ssh"

	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/retention"
	"zcloud/workflows"
)

// forgedSSHD is the attacker's server: a real sshd with its own host key
// that authorizes the worker's SSH key, reached on 127.0.0.2 at the port
// of the configured target (an input could only ever swap the address)
// through a proxy that counts every connection.
type forgedSSHD struct {
	HostKey string
	conns   atomic.Int64
}

func newForgedSSHD(t *testing.T, e *env) *forgedSSHD {
	t.Helper()
	b := testenv.NewSSHD(t)
	// B lets the worker's key in: the attack would succeed if the worker
	// ever connected.
	if err := os.WriteFile(filepath.Join(b.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(e.sshd.Signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &forgedSSHD{HostKey: b.HostKey}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", e.sshd.Port))
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port))
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.Close() }()
				io.Copy(c, up)
			}()
		}
	}()
	return f
}

// An attacker who can start workflows on the namespace starts every
// workflow type directly, with raw inputs that try to widen what the
// config allows. Each run is refused, non-retryable, naming the field,
// before anything connects or is sent: the forged sshd sees no
// connection, no forged dataset or path appears.
func TestForgedWorkflowInputsAreRefused(t *testing.T) {
	e := newEnv(t)
	src, dst := e.src.Pool.String(), e.dst.Pool.String()
	testenv.MustZFS(t, "zfs", "create", src+"/data")
	e.startWorker(e.cfg)
	forged := newForgedSSHD(t, e)
	evil := filepath.Join(t.TempDir(), "evil") // a receiver path, a store directory
	stolen := dst + "/stolen"

	with := func(base map[string]any, kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	rep := map[string]any{"source": src + "/data", "target": "backup", "target_dataset": dst + "/data"}
	policy := map[string]any{"dataset": src + "/data", "policy": map[string]any{"daily": 7}, "max_destroy_count": -1, "max_destroy_percent": -1}
	arch := map[string]any{"dataset": src + "/data", "cycle": int64(30 * 24 * time.Hour), "class": "STANDARD", "max_delete_cycles": -1, "max_delete_bytes": -1}
	restore := map[string]any{"dataset": src + "/data", "target_dataset": dst + "/restored", "identity": "owner", "tier": "Standard", "days": 1}
	cases := []struct {
		name, workflow string
		in             map[string]any
		field          string
	}{
		{"static target at another host and host key", workflows.ReplicateName,
			with(rep, "target_host", "127.0.0.2", "target_host_key", forged.HostKey), "target_host"},
		{"static target with another host key", workflows.ReplicateName, with(rep, "target_host_key", forged.HostKey), "target_host_key"},
		{"static target with an instance", workflows.ReplicateName, with(rep, "target_instance", "i-0123456789abcdef0"), "target_instance"},
		{"unknown target", workflows.ReplicateName, with(rep, "target", "nosuch"), "target"},
		{"target dataset not configured", workflows.ReplicateName, with(rep, "target_dataset", stolen), "target_dataset"},
		{"source not configured", workflows.ReplicateName, with(rep, "source", src+"/other"), "source"},
		{"raw flag the config does not set", workflows.ReplicateName, with(rep, "raw", true), "raw"},
		{"plaintext the config does not allow", workflows.ReplicateName, with(rep, "allow_plaintext", true), "allow_plaintext"},
		{"receiver path", workflows.ReplicateName, with(rep, "receiver_path", evil), "receiver_path"},
		{"session to a static target", workflows.SessionName, map[string]any{"target": "backup"}, "target"},
		{"session to an unknown target", workflows.SessionName, map[string]any{"target": "nosuch"}, "target"},
		{"session with an address", workflows.SessionName, map[string]any{"target": "backup", "target_host": "127.0.0.2"}, "target_host"},
		{"snapshot policy not configured", workflows.SnapshotPolicyName, policy, "dataset"},
		{"prune policy not configured", workflows.PrunePolicyName, policy, "dataset"},
		{"prune plan not configured", workflows.PolicyPlanName, policy, "dataset"},
		{"pool create", workflows.PoolCreateName, map[string]any{"pool": "nosuch"}, "pool"},
		{"pool grow", workflows.PoolGrowName, map[string]any{"pool": "nosuch", "mode": "in-place", "size_gib": 16}, "pool"},
		{"pool scrub", workflows.PoolScrubName, map[string]any{"pool": "nosuch"}, "pool"},
		{"pool destroy", workflows.PoolDestroyName, map[string]any{"pool": "nosuch", "confirm": "nosuch"}, "pool"},
		{"pool on another host", workflows.PoolCreateName, map[string]any{"pool": "nosuch", "target": "backup"}, "target"},
		{"archive of a dataset not configured", workflows.ArchiveName, arch, "dataset"},
		{"archive to another store", workflows.ArchiveName, with(arch, "store", map[string]any{"kind": "local", "dir": evil}), "store"},
		{"archive tick to another store", workflows.ArchiveTickName, with(arch, "store", map[string]any{"kind": "local", "dir": evil}), "store"},
		{"restore with a key the config does not list", workflows.RestoreName, with(restore, "identity", "pool-key"), "identity"},
		{"restore from another store", workflows.RestoreName, with(restore, "store", map[string]any{"kind": "local", "dir": evil}), "store"},
		{"staging into a dataset not configured", workflows.StagingName, map[string]any{"source": src + "/data", "dataset": stolen}, "source"},
		{"staging to another store", workflows.StagingName, map[string]any{"source": src + "/data", "dataset": stolen, "recipients": []string{"age1x"}}, "recipients"},
		{"verify with a key the config does not list", workflows.VerifyName, map[string]any{"dataset": src + "/data", "identity": "pool-key", "tier": "Bulk"}, "identity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run, err := e.client.ExecuteWorkflow(e.ctx(time.Minute), client.StartWorkflowOptions{TaskQueue: e.queue,
				ID: testenv.RandomName("forged-")}, tc.workflow, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			err = run.Get(e.ctx(2*time.Minute), nil)
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) {
				t.Fatalf("want a refusal, got %v", err)
			}
			if ae.Type() != contract.ErrTypeNotAllowed || !ae.NonRetryable() || !strings.Contains(ae.Message(), tc.field+": not allowed;") {
				t.Fatalf("want a non-retryable %s naming %s, got %s: %s (non-retryable %t)", contract.ErrTypeNotAllowed, tc.field, ae.Type(), ae.Message(), ae.NonRetryable())
			}
			t.Logf("refused: %s", ae.Message())
		})
	}
	if n := forged.conns.Load(); n != 0 {
		t.Errorf("the forged sshd on 127.0.0.2 saw %d connection(s)", n)
	}
	for _, ds := range []string{stolen, dst + "/restored"} {
		if out, err := exec.Command("zfs", "list", "-H", "-o", "name", ds).CombinedOutput(); err == nil {
			t.Errorf("%s exists (%s): something was received", ds, out)
		} else if !strings.Contains(string(out), "does not exist") {
			t.Errorf("zfs list %s: %v: %s", ds, err, out)
		}
	}
	if _, err := os.Stat(evil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the forged path %s was written (%v)", evil, err)
	}
}

// rogueName is the workflow a rogue worker runs: one activity, by name,
// with whatever request its input carries, on the victim's task queue.
const rogueName = "RogueActivity"

type rogueCall struct {
	Queue    string          `json:"queue"`
	Activity string          `json:"activity"`
	Request  json.RawMessage `json:"request"` // raw: a map would turn 64-bit GUIDs into float64
}

func rogueActivity(ctx workflow.Context, c rogueCall) (map[string]any, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: c.Queue, StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	var out map[string]any
	err := workflow.ExecuteActivity(ctx, c.Activity, c.Request).Get(ctx, &out)
	return out, err
}

// rogue is someone who can run a worker on the namespace: workflow code of
// their own, on a queue of their own, that schedules the victim worker's
// activities with any request at all. No workflow input check can stop
// that; only each activity's own check against the config can.
type rogue struct {
	t      *testing.T
	client client.Client
	queue  string // the rogue's
	victim string // the worker's
}

func newRogue(t *testing.T, cl client.Client, victim string) *rogue {
	r := &rogue{t: t, client: cl, queue: testenv.RandomName("rogue-"), victim: victim}
	w := worker.New(cl, r.queue, worker.Options{})
	w.RegisterWorkflowWithOptions(rogueActivity, workflow.RegisterOptions{Name: rogueName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return r
}

// call runs activity on the victim's worker with req and returns its
// result or error.
func (r *rogue) call(activity string, req map[string]any) (map[string]any, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := json.Marshal(req)
	if err != nil {
		r.t.Fatal(err)
	}
	run, err := r.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: r.queue, ID: testenv.RandomName("rogue-")},
		rogueName, rogueCall{Queue: r.victim, Activity: activity, Request: b})
	if err != nil {
		r.t.Fatal(err)
	}
	var out map[string]any
	err = run.Get(ctx, &out)
	return out, err
}

// refused checks that err is the non-retryable NotAllowed refusal of field.
func refused(t *testing.T, err error, field string) {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("want a refusal, got %v", err)
	}
	if ae.Type() != contract.ErrTypeNotAllowed || !ae.NonRetryable() || !strings.Contains(ae.Message(), field+": not allowed;") {
		t.Fatalf("want a non-retryable %s naming %s, got %s: %s (non-retryable %t)", contract.ErrTypeNotAllowed, field, ae.Type(), ae.Message(), ae.NonRetryable())
	}
	t.Logf("refused: %s", ae.Message())
}

// A forged destroy list cannot prune what the configured policy keeps:
// the activity re-plans from the config and the live snapshots and refuses
// the whole list, and the snapshot is still there.
func TestForgedPruneListIsRefused(t *testing.T) {
	e := newPolicyEnv(t, "hourly: 1")
	r := newRogue(t, e.client, e.cfg.Temporal.TaskQueue)
	now := time.Now().UTC()
	first, second := retention.SnapshotName(retention.DefaultPrefix, now.Add(-2*time.Hour)), retention.SnapshotName(retention.DefaultPrefix, now.Add(-time.Hour))
	newest := retention.SnapshotName(retention.DefaultPrefix, now)
	e.snap("manual", first, second, newest) // created in this order: newest is the newest
	guids := map[string]uint64{}
	infos, err := e.zfs.ListSnapshots(context.Background(), e.ds)
	if err != nil {
		t.Fatal(err)
	}
	for _, si := range infos {
		guids[si.Snapshot.Name()] = si.GUID
	}
	testenv.MustZFS(t, "zfs", "hold", "keep", e.ds.String()+"@"+first)
	t.Cleanup(func() { exec.Command("zfs", "release", "keep", e.ds.String()+"@"+first).Run() })
	destroy := func(names ...string) (map[string]any, error) {
		var list []map[string]any
		for _, n := range names {
			list = append(list, map[string]any{"name": n, "guid": guids[n]})
		}
		return r.call(contract.DestroySnapshots, map[string]any{"dataset": e.ds.String(), "plan_id": "forged", "snapshots": list})
	}
	for _, tc := range []struct {
		name  string
		list  []string
		field string
	}{
		{"the newest snapshot, which the policy keeps", []string{second, newest}, "snapshots[1]"},
		{"a snapshot zcloud did not take (no include_foreign)", []string{"manual"}, "snapshots[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := destroy(tc.list...)
			refused(t, err, tc.field)
		})
	}
	// A held snapshot is skipped, not destroyed.
	out, err := destroy(first)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held snapshot: %v", out)
	if got := e.snapshots(); !slices.Equal(got, []string{"manual", first, second, newest}) {
		t.Fatalf("snapshots after the forged lists: %v; want all four", got)
	}
	// What the policy does prune still goes: the check refuses only what the config keeps.
	if _, err := destroy(second); err != nil {
		t.Fatal(err)
	}
	if got := e.snapshots(); !slices.Equal(got, []string{"manual", first, newest}) {
		t.Fatalf("snapshots after the honest destroy: %v", got)
	}
}

// An archive run's safety limits can be made stricter by its input, never
// looser than the worker's config: each forged limit is refused by the
// first step, before anything is uploaded.
func TestForgedArchiveLimitsAreRefused(t *testing.T) {
	e := newEnv(t)
	storeDir := t.TempDir()
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q", storeDir))
	w.maxTier = "Standard"
	// The owner's key is on this worker too, so a restore could get through.
	w.keysDir = archKeyDir(t, map[string]*age.X25519Identity{"host": w.host, "owner": w.owner})
	w.cfg, w.cfgPath = w.config(t, e.queue, w.keysDir, ", max_delete_bytes: 1048576")
	e.startWorker(w.cfg)
	w.round(t, 0)
	for _, tc := range []struct {
		name  string
		set   func(*workflows.ArchiveInput)
		field string
	}{
		{"a cycle shorter than the config's", func(in *workflows.ArchiveInput) { in.Cycle = time.Second }, "cycle"},
		{"the sanity check off", func(in *workflows.ArchiveInput) { in.SanityMinPercent = 0 }, "sanity_min_percent"},
		{"the sanity check waived", func(in *workflows.ArchiveInput) { in.AcceptSmaller = true }, "accept_smaller"},
		{"early deletion forced", func(in *workflows.ArchiveInput) { in.Force = true }, "force"},
		{"the deletion byte limit off", func(in *workflows.ArchiveInput) { in.MaxDeleteBytes = -1 }, "max_delete_bytes"},
		{"a deletion byte limit above the config's", func(in *workflows.ArchiveInput) { in.MaxDeleteBytes = 1 << 30 }, "max_delete_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := w.input()
			tc.set(&in)
			_, _, err := w.archive(in)
			refused(t, err, tc.field)
		})
	}
	var stored []string
	filepath.WalkDir(storeDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			stored = append(stored, p)
		}
		return nil
	})
	if len(stored) != 0 {
		t.Fatalf("the refused runs stored %v", stored)
	}
	// The config's own limits, and stricter ones, still archive.
	in := w.input()
	in.MaxDeleteBytes, in.SanityMinPercent = 1024, 90
	if _, _, err := w.archive(in); err != nil {
		t.Fatal(err)
	}
	w.assertChain(t, "full:s0")
	// Retrievals of that archive: no dearer tier, no longer days than the
	// config's caps; refused before the target is reached or anything is read.
	restore := workflows.RestoreInput{Dataset: w.ds.String(), TargetDataset: e.dst.Pool.String() + "/restored", Target: "backup",
		Identity: "owner", Tier: "Standard", Days: 1}
	verify := workflows.VerifyInput{Dataset: w.ds.String(), Tier: "Bulk", Days: 1}
	for _, tc := range []struct {
		name, workflow string
		in             any
		field          string
	}{
		{"a restore at a dearer tier", workflows.RestoreName, func() any { in := restore; in.Tier = "Expedited"; return in }(), "tier"},
		{"a restore kept readable longer", workflows.RestoreName, func() any { in := restore; in.Days = 365; return in }(), "days"},
		{"a drill at a dearer tier", workflows.VerifyName, func() any { in := verify; in.Tier = "Expedited"; return in }(), "tier"},
		{"a drill kept readable longer", workflows.VerifyName, func() any { in := verify; in.Days = 365; return in }(), "days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st any
			err := e.archStart(w.queue, tc.workflow, tc.in).Get(e.ctx(time.Minute), &st)
			refused(t, err, tc.field)
		})
	}
	if out, err := exec.Command("zfs", "list", "-H", "-o", "name", restore.TargetDataset).CombinedOutput(); err == nil {
		t.Errorf("%s exists (%s): a refused restore received", restore.TargetDataset, out)
	}
}

// A grow's new volumes stay within the configured pool's grow caps (EBS
// volumes never shrink and are billed by size and performance): each
// forged size, type or performance is refused before any volume is made
// or modified.
func TestForgedGrowIsRefused(t *testing.T) {
	pe := newPoolEnv(t, poolOpts{vdevs: 1, width: 1, redundancy: "stripe", sizeGiB: 1})
	pe.startWorker(pe.cfg)
	for _, tc := range []struct {
		name  string
		in    workflows.PoolGrowInput
		field string
	}{
		{"a size beyond the cap", workflows.PoolGrowInput{Mode: workflows.GrowInPlace, SizeGiB: 65536}, "size_gib"},
		{"a volume type the config does not list", workflows.PoolGrowInput{Mode: workflows.GrowRollingReplace, SizeGiB: 2, VolumeType: "io2", IOPS: 3000}, "volume_type"},
		{"more IOPS than the cap", workflows.PoolGrowInput{Mode: workflows.GrowRollingReplace, SizeGiB: 2, IOPS: 16000}, "iops"},
		{"more throughput than the cap", workflows.PoolGrowInput{Mode: workflows.GrowRollingReplace, SizeGiB: 2, Throughput: 1000}, "throughput"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Pool = pe.pool
			err := pe.start(workflows.PoolGrowName, in).Get(pe.ctx(2*time.Minute), nil)
			refused(t, err, tc.field)
		})
	}
	if vols := pe.seam.poolVolumes(pe.pool); len(vols) != 0 {
		t.Fatalf("the refused grows made %d volume(s)", len(vols))
	}
}
