package e2e

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/protobuf/proto"

	"zcloud/activities"
	"zcloud/internal/testenv"
	"zcloud/transfer"
	"zcloud/workflows"
	"zcloud/zfsexec"
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Sync() error    { return nil }
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// sessionKeyHex extracts the key from a session the way the receiver reads it.
func sessionKeyHex(t *testing.T, s transfer.Session) string {
	var b bytes.Buffer
	if err := transfer.WriteSession(&b, s); err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(b.String())
	return f[len(f)-1]
}

func TestParallelSessionKeyNeverLeaks(t *testing.T) {
	e := newEnv(t)
	e.cfg = e.config("parallel", 2<<20, e.sshd.HostKey, e.sshd.Port)
	var mu sync.Mutex
	var keys []string
	logs := &syncBuffer{}
	e.startWorker(e.cfg, func(a *activities.Activities) {
		l := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zap.DebugLevel))
		a.Log, a.Local = l, zfsexec.NewLocal(l)
		a.SessionObserver = func(s transfer.Session) { mu.Lock(); keys = append(keys, sessionKeyHex(t, s)); mu.Unlock() }
	})
	testenv.MustZFS(t, "zfs", "create", e.src.Pool.String()+"/data")
	writeTree(t, "/"+e.src.Pool.String()+"/data", 3, 8, 1<<20)

	// Watch every process's arguments on this machine (both ends) while
	// the transfer runs.
	stop := make(chan struct{})
	var psOut strings.Builder
	var psWG sync.WaitGroup
	psWG.Add(1)
	go func() {
		defer psWG.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				out, _ := exec.Command("ps", "-eo", "args").Output()
				psOut.Write(out)
			}
		}
	}()
	in := workflows.ReplicateInput{Source: e.src.Pool.String() + "/data", Target: "backup", TargetDataset: e.dst.Pool.String() + "/data"}
	_, id, err := e.replicateRun(in)
	close(stop)
	psWG.Wait()
	if err != nil {
		t.Fatal(err)
	}
	assertSameTree(t, "/"+in.Source, "/"+in.TargetDataset)
	if len(keys) == 0 {
		t.Fatal("no transfer session was created: the parallel transport did not run")
	}
	if !strings.Contains(psOut.String(), "transfer recv") {
		t.Fatal("the process watcher never saw the receiver: it proves nothing")
	}
	hist := e.historyBytes(id)
	for _, k := range keys {
		raw, _ := hex.DecodeString(k)
		for name, hay := range map[string][]byte{"workflow history": hist, "worker logs": []byte(logs.String()), "process list": []byte(psOut.String())} {
			if bytes.Contains(hay, []byte(k)) || bytes.Contains(hay, raw) {
				t.Errorf("session key found in the %s", name)
			}
		}
	}
}

// historyBytes is the workflow's whole history in its binary encoding, which
// holds every payload's raw bytes.
func (e *env) historyBytes(id string) []byte {
	e.t.Helper()
	it := e.client.GetWorkflowHistory(e.ctx(30*time.Second), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &history.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			e.t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := proto.Marshal(h)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func TestCancelledReplicationLeavesNoProcessOnEitherEnd(t *testing.T) {
	e := newEnv(t)
	e.cfg = e.config("parallel", 0, e.sshd.HostKey, e.sshd.Port)
	e.startWorker(e.cfg)
	testenv.MustZFS(t, "zfs", "create", e.src.Pool.String()+"/data")
	writeTree(t, "/"+e.src.Pool.String()+"/data", 4, 20, 1<<20)
	e.holdAt("send", 1<<20) // the cancel comes mid-transfer
	in := workflows.ReplicateInput{Source: e.src.Pool.String() + "/data", Target: "backup", TargetDataset: e.dst.Pool.String() + "/data",
		HeartbeatTimeout: 5 * time.Second}
	run, err := e.client.ExecuteWorkflow(e.ctx(time.Minute), client.StartWorkflowOptions{TaskQueue: e.queue}, workflows.ReplicateName, in)
	if err != nil {
		t.Fatal(err)
	}
	e.waitHeld("send")
	if n := countProcs(t, e.dst.Pool.String()); n == 0 {
		t.Fatal("no receiving process seen mid-transfer: the check below would prove nothing")
	}
	if err := e.client.CancelWorkflow(e.ctx(10*time.Second), run.GetID(), ""); err != nil {
		t.Fatal(err)
	}
	err = run.Get(e.ctx(time.Minute), nil)
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("want a cancelled workflow, got %v", err)
	}
	for i := 0; ; i++ {
		n := countProcs(t, e.dst.Pool.String()) + countProcs(t, "zfs send "+e.src.Pool.String())
		if n == 0 {
			break
		}
		if i > 100 {
			out, _ := exec.Command("ps", "-eo", "pid,args").Output()
			t.Fatalf("processes left behind after cancellation:\n%s", grepLines(string(out), e.src.Pool.String(), e.dst.Pool.String()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func countProcs(t *testing.T, pattern string) int {
	out, _ := exec.Command("pgrep", "-f", pattern).Output()
	return len(strings.Fields(string(out)))
}

func grepLines(s string, pats ...string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		for _, p := range pats {
			if strings.Contains(sc.Text(), p) {
				b.WriteString(sc.Text() + "\n")
				break
			}
		}
	}
	return b.String()
}
