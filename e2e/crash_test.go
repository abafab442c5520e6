package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"zcloud/internal/testenv"
	"zcloud/workflows"
)

var zcloudBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "zcloud-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "zcloud")
	out, err := exec.Command("go", "build", "-o", bin, "zcloud/starter").CombinedOutput()
	if err != nil {
		return "", &buildError{string(out), err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (b *buildError) Error() string { return b.err.Error() + "\n" + b.out }

// startWorkerProcess runs `zcloud worker` as a separate OS process, so the
// test can kill it the way a crash or power loss would.
func (e *env) startWorkerProcess() *exec.Cmd {
	e.t.Helper()
	bin, err := zcloudBin()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(bin, "worker", "--config", e.cfgPath)
	e.gateEnv(cmd)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	return cmd
}

func TestReplicateFinishesAfterWorkerIsKilledMidSend(t *testing.T) {
	e := newEnv(t)
	e.cfg = e.config("parallel", 0, e.sshd.HostKey, e.sshd.Port)
	testenv.MustZFS(t, "zfs", "create", e.src.Pool.String()+"/data")
	srcDir := "/" + e.src.Pool.String() + "/data"
	writeTree(t, srcDir, 7, 12, 1<<20)
	in := workflows.ReplicateInput{Source: e.src.Pool.String() + "/data", Target: "backup",
		TargetDataset: e.dst.Pool.String() + "/data", HeartbeatTimeout: 5 * time.Second}

	// The send holds after 1 MiB of the ~7 MiB stream: the kill is mid-send.
	e.holdAt("send", 1<<20)
	w1 := e.startWorkerProcess()
	run, err := e.client.ExecuteWorkflow(e.ctx(time.Minute), client.StartWorkflowOptions{TaskQueue: e.queue}, workflows.ReplicateName, in)
	if err != nil {
		t.Fatal(err)
	}
	e.waitHeld("send")
	// Kill -9 the whole worker process group mid-stream.
	if err := syscall.Kill(-w1.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w1.Wait()
	t.Log("worker killed mid-send; starting a new one")
	e.startWorkerProcess()

	var res workflows.ReplicateResult
	if err := run.Get(e.ctx(4*time.Minute), &res); err != nil {
		t.Fatal(err)
	}
	assertSameTree(t, srcDir, "/"+in.TargetDataset)
	desc, err := e.client.DescribeWorkflowExecution(e.ctx(10*time.Second), run.GetID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Fatalf("status %s", desc.GetWorkflowExecutionInfo().GetStatus())
	}
	// The send ran more than once: the kill really interrupted it.
	hist := e.client.GetWorkflowHistory(e.ctx(10*time.Second), run.GetID(), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	attempts := int32(0)
	for hist.HasNext() {
		ev, err := hist.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > attempts {
			attempts = a.GetAttempt()
		}
	}
	if attempts < 2 {
		t.Fatalf("send finished in %d attempt(s): the kill did not interrupt it", attempts)
	}
}
