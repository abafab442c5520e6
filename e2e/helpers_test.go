package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/internal/testenv"
	"zcloud/internal/testgate"
	"zcloud/workerapp"
	"zcloud/workflows"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// env is one test's world: Temporal, an sshd target, source and target pools.
type env struct {
	t        *testing.T
	temporal *testenv.Temporal
	sshd     *testenv.SSHD
	src, dst *testenv.TestPool
	cfg      *config.Config
	cfgPath  string
	client   client.Client
	queue    string
	gate     *testgate.Gate // see gate_test.go
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, temporal: testenv.SharedTemporal(t), sshd: testenv.SharedSSHD(t)}
	e.src = testenv.NewPool(t, "src", 1, 128, "")
	e.dst = testenv.NewPool(t, "dst", 1, 128, "")
	e.queue = testenv.RandomName("q-")
	e.cfg = e.config("ssh", 0, e.sshd.HostKey, e.sshd.Port)
	cl, err := client.Dial(client.Options{HostPort: e.temporal.HostPort, Namespace: e.temporal.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.client = cl
	return e
}

// config builds and validates a config whose target "backup" is the sshd.
// transport "parallel" installs the freshly built zcloud binary on the
// target as the receiver.
func (e *env) config(transport string, bwlimit int64, hostKey string, port int) *config.Config {
	e.t.Helper()
	bin := ""
	if transport == "parallel" {
		var err error
		if bin, err = zcloudBin(); err != nil {
			e.t.Fatal(err)
		}
	}
	recvPath := filepath.Join(e.t.TempDir(), "target-bin", "zcloud")
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
log: {level: debug}
receiver_binary: %q
targets:
  backup:
    transport: %s
    bandwidth_limit: %d
    receiver_path: %q
    ssh: {host: 127.0.0.1, port: %d, user: %s, identity_file: %q, host_key: %q, connect_timeout: 5s}
replications:
  - {source: %[12]s/data, target: backup, target_dataset: %[13]s/data}
  - {source: %[12]s/data, target: backup, target_dataset: %[13]s/backup/data}
  - {source: %[12]s/nope, target: backup, target_dataset: %[13]s/data}
  - {source: %[12]s/data, target: backup, target_dataset: nosuchpool/data}
`, e.temporal.HostPort, e.temporal.Namespace, e.queue, bin, transport, bwlimit, recvPath, port, e.sshd.User, e.sshd.ClientKeyPath, hostKey,
		e.src.Pool, e.dst.Pool)
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		e.t.Fatal(err)
	}
	e.cfgPath = filepath.Join(e.t.TempDir(), "zcloud.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(y), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// startWorker runs an in-process worker for cfg until the test ends.
func (e *env) startWorker(cfg *config.Config, opts ...func(*activities.Activities)) worker.Worker {
	e.t.Helper()
	log := zaptest.NewLogger(e.t, zaptest.Level(zap.InfoLevel))
	acts := activities.New(cfg, log)
	acts.Gate = e.testGate()
	for _, o := range opts {
		o(acts)
	}
	w := workerapp.New(e.client, cfg, acts)
	if err := w.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Stop)
	return w
}

// useConfig parses y (the test fails with the YAML on an error), writes it
// as the env's config file (for the CLI) and makes it the env's config.
func (e *env) useConfig(y string) *config.Config {
	e.t.Helper()
	cfg, err := config.Parse([]byte(y))
	if err != nil {
		e.t.Fatalf("%v\n%s", err, y)
	}
	e.cfg = cfg
	e.cfgPath = filepath.Join(e.t.TempDir(), "zcloud.yaml")
	if err := os.WriteFile(e.cfgPath, []byte(y), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// waitNextSecond waits until the clock is in a later second than t: names
// derived from workflow time (snapshots, archive cycles) have one-second
// resolution. A wait on the clock itself, never on another process.
func waitNextSecond(tb testing.TB, t time.Time) {
	tb.Helper()
	next := t.Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(next))
	for time.Now().Before(next) {
		time.Sleep(time.Millisecond)
	}
}

func (e *env) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	return ctx
}

// writeTree fills dir with nested files of random bytes.
func writeTree(t *testing.T, dir string, seed uint64, files, maxSize int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i < files; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("e%d", i%2))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1+r.IntN(maxSize))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d.bin", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeSums maps each regular file's relative path to its SHA-256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		sums[rel] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func assertSameTree(t *testing.T, want, got string) {
	t.Helper()
	w, g := treeSums(t, want), treeSums(t, got)
	if len(w) == 0 {
		t.Fatalf("source tree %s is empty", want)
	}
	var diffs []string
	for k, v := range w {
		if g[k] != v {
			diffs = append(diffs, "differs or missing: "+k)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			diffs = append(diffs, "extra on target: "+k)
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%s and %s differ:\n%s", want, got, strings.Join(diffs, "\n"))
	}
}

// newReplayer replays recorded histories with the SDK's 1 s deadlock
// detector off: on a loaded machine a correct workflow can be descheduled
// that long (TMPRL1101).
func newReplayer(t *testing.T) worker.WorkflowReplayer {
	t.Helper()
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DisableDeadlockDetection: true,
		// What the worker runs its workflows with (it reports failed runs).
		Interceptors: []interceptor.WorkerInterceptor{workflows.NewInterceptor(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func workflowRegisterOptions(name string) workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: name}
}
