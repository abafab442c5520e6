package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"zcloud/internal/testenv"
)

// The worker as a service runs it: `zcloud worker` started before Temporal
// does not exit; it logs that it waits, connects once Temporal is up, and
// `zcloud worker --check` (the container's health check) then passes.
func TestWorkerStartedBeforeTemporalWaitsForIt(t *testing.T) {
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "zcloud.yaml")
	y := fmt.Sprintf("temporal: {address: \"127.0.0.1:%d\", namespace: default, task_queue: %s}\n", port, testenv.RandomName("q-"))
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func() (string, error) {
		out, err := exec.Command(bin, "--config", cfgPath, "worker", "--check").CombinedOutput()
		return string(out), err
	}

	w := exec.Command(bin, "--config", cfgPath, "worker")
	stderr, err := w.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Stdout = w.Stderr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waiting := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "waiting for Temporal") {
				select {
				case waiting <- sc.Text():
				default:
				}
			}
		}
		exited <- w.Wait()
	}()
	t.Cleanup(func() {
		_ = w.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	select {
	case line := <-waiting:
		t.Logf("worker: %s", line)
	case err := <-exited:
		t.Fatalf("the worker exited while Temporal was down: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the worker never said it waits for Temporal")
	}
	if out, err := check(); err == nil {
		t.Fatalf("worker --check passed with Temporal down:\n%s", out)
	}

	srv, err := testenv.StartTemporalOn(filepath.Join(dir, "temporal.log"), port, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	var out string
	waitFor(t, 2*time.Minute, "zcloud worker --check to pass", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("the worker exited: %v", err)
		default:
		}
		out, err = check()
		return err == nil
	})
	if !strings.Contains(out, "ok: a worker on this host polls task queue") {
		t.Errorf("worker --check: %s", out)
	}
}
