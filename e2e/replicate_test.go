package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

func (e *env) replicate(in workflows.ReplicateInput) (workflows.ReplicateResult, error) {
	e.t.Helper()
	res, _, err := e.replicateRun(in)
	return res, err
}

func (e *env) replicateRun(in workflows.ReplicateInput) (workflows.ReplicateResult, string, error) {
	e.t.Helper()
	run, err := e.client.ExecuteWorkflow(e.ctx(5*time.Minute), client.StartWorkflowOptions{TaskQueue: e.queue}, workflows.ReplicateName, in)
	if err != nil {
		e.t.Fatal(err)
	}
	var res workflows.ReplicateResult
	err = run.Get(e.ctx(5*time.Minute), &res)
	return res, run.GetID(), err
}

func TestReplicateFullThenIncrementalIsByteIdentical(t *testing.T) {
	for _, transport := range []string{"parallel", "ssh"} {
		t.Run(transport, func(t *testing.T) { testFullThenIncremental(t, transport) })
	}
}

func testFullThenIncremental(t *testing.T, transport string) {
	e := newEnv(t)
	e.cfg = e.config(transport, 0, e.sshd.HostKey, e.sshd.Port)
	e.startWorker(e.cfg)
	testenv.MustZFS(t, "zfs", "create", e.src.Pool.String()+"/data")
	srcDir := "/" + e.src.Pool.String() + "/data"
	writeTree(t, srcDir, 1, 24, 256<<10)
	in := workflows.ReplicateInput{Source: e.src.Pool.String() + "/data", Target: "backup", TargetDataset: e.dst.Pool.String() + "/backup/data"}

	res, err := e.replicate(in)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now() // the snapshot was named before this
	if !res.Send.Full || res.Send.Bytes == 0 || res.Send.Transport != transport {
		t.Fatalf("first run should send a full stream: %+v", res.Send)
	}
	dstDir := "/" + in.TargetDataset
	assertSameTree(t, srcDir, dstDir)

	// Change the data: modify, add, delete.
	if err := os.WriteFile(filepath.Join(srcDir, "d0/e0/f0.bin"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeTree(t, filepath.Join(srcDir, "new"), 2, 6, 64<<10)
	if err := os.Remove(filepath.Join(srcDir, "d1/e1/f1.bin")); err != nil {
		t.Fatal(err)
	}
	waitNextSecond(t, before) // snapshot names have one-second resolution
	res2, id2, err := e.replicateRun(in)
	if err != nil {
		t.Fatal(err)
	}
	if transport == "parallel" {
		e.replayHistory(id2, "replicate-incremental")
	}
	if res2.Send.Full || res2.Send.From != res.Snapshot {
		t.Fatalf("second run should be incremental from %s: %+v", res.Snapshot, res2.Send)
	}
	if res2.Send.Bytes >= res.Send.Bytes {
		t.Errorf("incremental (%d bytes) not smaller than full (%d bytes)", res2.Send.Bytes, res.Send.Bytes)
	}
	assertSameTree(t, srcDir, dstDir)

	// The newest snapshot is held for the target, the previous one released.
	for snap, want := range map[string]string{res2.Snapshot: "1", res.Snapshot: "0"} {
		if got := strings.TrimSpace(testenv.MustZFS(t, "zfs", "get", "-Hp", "-o", "value", "userrefs", snap)); got != want {
			t.Errorf("holds on %s = %s, want %s", snap, got, want)
		}
	}
}

// appError digs out the activity's application error type.
func appErrorType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type()
	}
	return ""
}

func TestReplicateFailsClearly(t *testing.T) {
	e := newEnv(t)
	testenv.MustZFS(t, "zfs", "create", e.src.Pool.String()+"/data")
	good := workflows.ReplicateInput{Source: e.src.Pool.String() + "/data", Target: "backup", TargetDataset: e.dst.Pool.String() + "/data"}
	e.startWorker(e.cfg)

	// A second worker on another queue whose target has the wrong host key
	// or a closed port.
	wrongKey := testenv.NewSSHD(t) // a different server's key
	cases := []struct {
		name     string
		mutate   func(*workflows.ReplicateInput)
		cfgKey   string
		cfgPort  int
		wantType string
		wantMsg  string
	}{
		{"missing source", func(in *workflows.ReplicateInput) { in.Source = e.src.Pool.String() + "/nope" }, "", 0, contract.ErrTypeNotFound, "does not exist"},
		{"hostile source name", func(in *workflows.ReplicateInput) { in.Source = e.src.Pool.String() + "/a;touch /tmp/zcloud-pwned" }, "", 0, contract.ErrTypeInvalidName, "not allowed"},
		{"hostile target name", func(in *workflows.ReplicateInput) { in.TargetDataset = "$(touch /tmp/zcloud-pwned)" }, "", 0, contract.ErrTypeInvalidName, "invalid dataset name"},
		{"unknown target", func(in *workflows.ReplicateInput) { in.Target = "nosuch" }, "", 0, contract.ErrTypeNotAllowed, "target: not allowed; no target named"},
		{"missing target pool", func(in *workflows.ReplicateInput) { in.TargetDataset = "nosuchpool/data" }, "", 0, contract.ErrTypeNotFound, "pool nosuchpool does not exist"},
		{"wrong host key", nil, wrongKey.HostKey, 0, contract.ErrTypeHostKey, "host key"},
		{"unreachable", nil, "", testenv.FreePort(), contract.ErrTypeUnreachable, "unreachable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := good
			if tc.mutate != nil {
				in.Target = "backup"
				tc.mutate(&in)
			}
			if tc.cfgKey != "" || tc.cfgPort != 0 {
				key, port := e.sshd.HostKey, e.sshd.Port
				if tc.cfgKey != "" {
					key = tc.cfgKey
				}
				if tc.cfgPort != 0 {
					port = tc.cfgPort
				}
				sub := *e
				sub.t = t
				sub.queue = testenv.RandomName("q-")
				cfg := sub.config("ssh", 0, key, port)
				sub.startWorker(cfg)
				e2 := &sub
				begin := time.Now()
				_, err := e2.replicate(in)
				checkErr(t, err, tc.wantType, tc.wantMsg)
				if time.Since(begin) > 60*time.Second {
					t.Errorf("took %s: the error should not be retried for long", time.Since(begin))
				}
				return
			}
			begin := time.Now()
			_, err := e.replicate(in)
			checkErr(t, err, tc.wantType, tc.wantMsg)
			if time.Since(begin) > 60*time.Second {
				t.Errorf("took %s: the error should end the workflow at once", time.Since(begin))
			}
		})
	}
	if _, err := os.Stat("/tmp/zcloud-pwned"); err == nil {
		os.Remove("/tmp/zcloud-pwned")
		t.Fatal("a hostile name was executed")
	}
}

func checkErr(t *testing.T, err error, wantType, wantMsg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got success", wantType)
	}
	if got := appErrorType(err); got != wantType {
		t.Errorf("error type %q, want %q: %v", got, wantType, err)
	}
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("error %q does not mention %q", err, wantMsg)
	}
}
