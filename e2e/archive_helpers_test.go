package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"zcloud/archive"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/s3store"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workflows"
	"zcloud/zfsname"
)

// archiveWorld is one archive test's keys, store and configuration.
type archiveWorld struct {
	e       *env
	owner   *age.X25519Identity // the archive recipient; its private key is offline
	host    *age.X25519Identity // the backup host's manifest key
	storeY  string              // the archive.store YAML
	ds      zfsname.Dataset     // the archived source dataset
	dir     string              // its mountpoint
	queue   string
	cfg     *config.Config
	cfgPath string
	keysDir string
	maxTier string // archive.max_restore_tier (moto's restores are free: Expedited)
}

// newArchiveWorld makes keys and a dataset; store is the archive.store YAML
// (flow style) without the braces.
func newArchiveWorld(t *testing.T, e *env, store string) *archiveWorld {
	w := &archiveWorld{e: e, storeY: store, queue: e.queue, maxTier: "Expedited"}
	var err error
	if w.owner, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	if w.host, err = age.GenerateX25519Identity(); err != nil {
		t.Fatal(err)
	}
	w.ds = zfsname.MustDataset(e.src.Pool.String() + "/data")
	testenv.MustZFS(t, "zfs", "create", w.ds.String())
	w.dir = "/" + w.ds.String()
	// The backup host's key source holds the host identity only: the
	// owner's private key is not on the backup host.
	w.keysDir = archKeyDir(t, map[string]*age.X25519Identity{"host": w.host})
	w.cfg, w.cfgPath = w.config(t, e.queue, w.keysDir, "")
	return w
}

// keyDir writes identities as key files (mode 0600) into a new directory.
func archKeyDir(t *testing.T, ids map[string]*age.X25519Identity) string {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, id := range ids {
		body := fmt.Sprintf("# public key: %s\n%s\n", id.Recipient(), id)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// config writes a configuration for queue with the given key dir; extra is
// more archive: fields (flow style, with a leading comma).
func (w *archiveWorld) config(t *testing.T, queue, keysDir, extra string) (*config.Config, string) {
	e := w.e
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
log: {level: debug}
keys: {dir: %q}
targets:
  backup:
    transport: ssh
    ssh: {host: 127.0.0.1, port: %d, user: %s, identity_file: %q, host_key: %q, connect_timeout: 5s}
archive: {store: {%s}, recipients: [%q], host_identity: host, restore_identity: owner, restore_poll: 1s,
  datasets: [{dataset: %s, cycle: 30d, sanity_min_percent: 50}], max_delete_cycles: -1, max_restore_tier: %s%s}
`, e.temporal.HostPort, e.temporal.Namespace, queue, keysDir, e.sshd.Port, e.sshd.User, e.sshd.ClientKeyPath, e.sshd.HostKey,
		w.storeY, w.owner.Recipient().String(), w.ds, w.maxTier, extra)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	path := filepath.Join(t.TempDir(), "zcloud.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, path
}

// input is what 'zcloud archive run' starts with: the config's cycle and
// limits (an input may only be stricter than the worker's config).
func (w *archiveWorld) input() workflows.ArchiveInput {
	ar := w.cfg.Archive
	return workflows.ArchiveInput{Dataset: w.ds.String(), Cycle: ar.Datasets[0].Cycle.Duration(), SanityMinPercent: *ar.Datasets[0].SanityMinPercent,
		Class: ar.Store.Class, MaxDeleteCycles: *ar.MaxDeleteCycles, MaxDeleteBytes: *ar.MaxDeleteBytes, HeartbeatTimeout: 5 * time.Second}
}

// start starts a workflow on queue and returns its run.
func (e *env) archStart(queue, name string, in any) client.WorkflowRun {
	e.t.Helper()
	run, err := e.client.ExecuteWorkflow(e.ctx(time.Minute), client.StartWorkflowOptions{TaskQueue: queue,
		ID: testenv.RandomName(strings.ToLower(name) + "-")}, name, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return run
}

func (w *archiveWorld) archive(in workflows.ArchiveInput) (workflows.ArchiveStatus, string, error) {
	w.e.t.Helper()
	run := w.e.archStart(w.queue, workflows.ArchiveName, in)
	var st workflows.ArchiveStatus
	err := run.Get(w.e.ctx(5*time.Minute), &st)
	return st, run.GetID(), err
}

// snapshot changes files (round i) and takes snapshot s<i>.
func (w *archiveWorld) round(t *testing.T, i int) {
	switch {
	case i == 0:
		writeTree(t, w.dir, 100, 12, 1<<20)
	default:
		writeTree(t, filepath.Join(w.dir, fmt.Sprintf("round%d", i)), uint64(100+i), 4, 256<<10)
		if err := os.WriteFile(filepath.Join(w.dir, "changed.txt"), []byte(strings.Repeat(fmt.Sprintf("round %d\n", i), 100)), 0o644); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if err := os.RemoveAll(filepath.Join(w.dir, "round1")); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.MustZFS(t, "zfs", "snapshot", fmt.Sprintf("%s@s%d", w.ds, i))
}

func archUserrefs(t *testing.T, snap string) string {
	return strings.TrimSpace(testenv.MustZFS(t, "zfs", "get", "-Hp", "-o", "value", "userrefs", snap))
}

// snapGUIDs lists a dataset's snapshots as name -> GUID.
func archSnapGUIDs(t *testing.T, ds string) map[string]uint64 {
	out := testenv.MustZFS(t, "zfs", "get", "-Hp", "-d", "1", "-o", "name,value", "guid", ds)
	m := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 2 || !strings.Contains(f[0], "@") {
			continue
		}
		g, _ := strconv.ParseUint(f[1], 10, 64)
		m[f[0][strings.Index(f[0], "@")+1:]] = g
	}
	return m
}

// store opens the test's object store directly (the test's own view).
func (w *archiveWorld) store(t *testing.T) objstore.Store {
	c := w.cfg.Archive.Store
	switch c.Kind {
	case "local":
		st, err := local.New(c.Dir, local.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	case "s3":
		cl, err := s3store.NewClient(context.Background(), c.Region, c.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		return s3store.New(cl, c.Bucket, s3store.Options{})
	}
	t.Fatalf("store kind %s", c.Kind)
	return nil
}

// manifest reads the manifest as the owner would.
func (w *archiveWorld) manifest(t *testing.T) *archive.Manifest {
	m, err := archive.LoadManifest(context.Background(), w.store(t), w.cfg.Archive.Store.Prefix, w.ds, w.owner)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// assertChain checks the manifest holds exactly the expected streams (by
// snapshot name, in order) and the store holds no object the manifest
// does not name.
func (w *archiveWorld) assertChain(t *testing.T, want ...string) *archive.Manifest {
	t.Helper()
	m := w.manifest(t)
	var got []string
	for _, c := range m.Cycles {
		for _, s := range c.Streams {
			got = append(got, string(s.Kind)[:4]+":"+s.To.Name)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("manifest streams %v, want %v", got, want)
	}
	orphans, err := archive.Orphans(context.Background(), w.store(t), w.cfg.Archive.Store.Prefix, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) > 0 {
		var keys []string
		for _, o := range orphans {
			keys = append(keys, o.Key)
		}
		t.Fatalf("orphan objects in the store: %v", keys)
	}
	return m
}

// archProgress returns the bytes the named pending activity last
// heartbeat in workflow id.
func (e *env) archProgress(id, activity string) int64 {
	desc, err := e.client.DescribeWorkflowExecution(e.ctx(10*time.Second), id, "")
	if err != nil {
		return 0
	}
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetActivityType().GetName() != activity || pa.GetHeartbeatDetails() == nil {
			continue
		}
		var p contract.Progress
		if converter.GetDefaultDataConverter().FromPayload(pa.GetHeartbeatDetails().GetPayloads()[0], &p) == nil {
			return p.Bytes
		}
	}
	return 0
}

// archWaitProgress waits until the server has activity's heartbeat of n
// bytes. Only call it while the activity is held at a gate: a heartbeat
// reaches the server at most every 0.8 x its timeout, so an activity that
// runs on may end before one shows.
func (e *env) archWaitProgress(id, activity string, n int64) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for e.archProgress(id, activity) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s never heartbeat %d bytes", activity, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// maxAttempt is the highest attempt of activity in the workflow's history.
func (e *env) archMaxAttempt(id, activity string) int32 {
	e.t.Helper()
	hist := e.client.GetWorkflowHistory(e.ctx(10*time.Second), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	sched := map[int64]string{}
	var n int32
	for hist.HasNext() {
		ev, err := hist.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			sched[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && sched[a.GetScheduledEventId()] == activity && a.GetAttempt() > n {
			n = a.GetAttempt()
		}
	}
	return n
}

// queryRestore returns a running restore's status.
func (e *env) archQueryRestore(id string) (workflows.RestoreStatus, error) {
	var st workflows.RestoreStatus
	v, err := e.client.QueryWorkflow(e.ctx(10*time.Second), id, "", workflows.StatusQuery)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// motoRestores sets how S3 RestoreObject progresses in moto: "manual" with
// times polls (HEADs) per step, or "immediate".
func archMotoRestores(t *testing.T, m *testenv.Moto, progression string, times int) {
	body := fmt.Sprintf(`{"model_name":"s3::keyrestore","transition":{"progression":%q,"times":%d}}`, progression, times)
	if progression == "immediate" {
		body = `{"model_name":"s3::keyrestore","transition":{"progression":"immediate"}}`
	}
	resp, err := http.Post(m.Endpoint+"/moto-api/state-manager/set-transition", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("moto set-transition: %s", resp.Status)
	}
}

// assertNoSecrets checks that no private key appears in the histories.
func (e *env) archAssertNoSecrets(ids []string, secrets ...*age.X25519Identity) {
	e.t.Helper()
	for _, id := range ids {
		h := e.historyBytes(id)
		if len(h) == 0 {
			e.t.Fatalf("empty history for %s", id)
		}
		for _, s := range secrets {
			key := s.String()
			for _, needle := range []string{key, strings.ToLower(key), strings.TrimPrefix(key, "AGE-SECRET-KEY-1")} {
				if bytes.Contains(h, []byte(needle)) {
					e.t.Fatalf("a private key appears in the history of %s", id)
				}
			}
		}
	}
}
