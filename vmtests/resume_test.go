package vmtests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"zcloud/internal/testenv"
	"zcloud/workflows"
	"zcloud/zfsexec"
)

// guestWorker is `zcloud worker` running in the guest (it owns the
// source pool there) against a Temporal dev server on this host, reached
// through QEMU's 10.0.2.2, with the test-only gate in gateDir.
type guestWorker struct {
	h       *host
	t       *testing.T
	bin     string
	name    string // files /tmp/<name>.{yaml,log,pid}
	gateDir string
	queue   string
	client  client.Client
}

// guestWorker starts a dev server and writes the worker's config (body is
// all but its temporal and log sections) into the guest; start runs it.
func (h *host) guestWorker(t *testing.T, name, body string) *guestWorker {
	t.Helper()
	bin := h.installZcloud(t)
	tmp, err := testenv.StartTemporal(filepath.Join(t.TempDir(), "temporal.log"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tmp.Stop)
	port := tmp.HostPort[strings.LastIndex(tmp.HostPort, ":")+1:]
	w := &guestWorker{h: h, t: t, bin: bin, name: name, gateDir: "/tmp/" + name + "-gate", queue: name + "-" + randHex(4)}
	cfg := fmt.Sprintf("temporal: {address: \"10.0.2.2:%s\", namespace: default, task_queue: %s}\nlog: {level: debug, format: console}\n%s", port, w.queue, body)
	h.sh(t, `mkdir -p "$1" && rm -f "$1"/* && printf '%s' "$2" > /tmp/"$3".yaml && : > /tmp/"$3".log`, w.gateDir, cfg, name)
	if w.client, err = client.Dial(client.Options{HostPort: tmp.HostPort, Namespace: "default"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.client.Close()
		h.shErr(`kill -9 $(cat /tmp/"$1".pid) 2>/dev/null; true`, name)
	})
	return w
}

func (w *guestWorker) start() {
	w.t.Helper()
	w.h.sh(w.t, `cd /tmp && ZCLOUD_TEST_GATE_DIR="$2" setsid "$1" worker --config /tmp/"$3".yaml >>/tmp/"$3".log 2>&1 </dev/null & echo $! > /tmp/"$3".pid`, w.bin, w.gateDir, w.name)
}

// kill SIGKILLs the worker (as a crash or power loss would) and returns once
// it is gone.
func (w *guestWorker) kill() {
	w.t.Helper()
	w.h.sh(w.t, `p=$(cat /tmp/"$1".pid); kill -9 "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done`, w.name)
}

func (w *guestWorker) log() string { return w.h.sh(w.t, `cat /tmp/"$1".log`, w.name) }

// arm makes the next activity passing point hold once its count reaches n.
func (w *guestWorker) arm(point string, n int64) {
	w.t.Helper()
	w.h.sh(w.t, `cd "$1" && rm -f "$2".held "$2".claimed "$2".release && echo "$3" > "$2".arm.tmp && mv "$2".arm.tmp "$2".arm`, w.gateDir, point, fmt.Sprint(n))
}

// waitHeld waits until an activity holds at point and returns the count
// it holds at; it fails at once when the workflow ended instead (the
// limit is for a hung run, not what the test waits on).
func (w *guestWorker) waitHeld(run client.WorkflowRun, point string) int64 {
	w.t.Helper()
	for i := 0; i < 1500; i++ {
		if out, err := w.h.shErr(`cat "$1/$2".held 2>/dev/null`, w.gateDir, point); err == nil {
			n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
			if err != nil {
				w.t.Fatalf("gate %s held with %q", point, out)
			}
			return n
		}
		d, err := w.client.DescribeWorkflowExecution(ctxT(w.t, time.Minute), run.GetID(), run.GetRunID())
		if err == nil && d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			w.t.Fatalf("the workflow ended (%s) before an activity reached gate %s; worker log:\n%s", d.WorkflowExecutionInfo.Status, point, w.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	w.t.Fatalf("nothing reached gate %s; worker log:\n%s", point, w.log())
	return 0
}

// A worker SIGKILLed in the middle of a send (held at the send gate after
// two thirds of the stream, so the moment is certain) leaves the target's
// `zfs receive -s` state behind; the retried activity, on a new worker,
// resumes from the target's receive_resume_token (`zfs send -t` in the
// worker's argv log) instead of starting over, so the bytes sent in all
// stay under 1.5 x the stream, and the target ends byte-identical. Once for
// the first (full) send, once for an incremental, through the real
// Temporal server.
func TestWorkerKilledMidSendResumesFromToken(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 15*time.Minute)
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 1<<30)
	src, dst := child(t, p, "src"), child(t, p, "dst")
	if err := h.zfs.Create(ctx, src, zfsexec.CreateOptions{Props: zfsexec.MustProps("compression", "off")}); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(h.vm.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	// The worker reaches its target, this guest's own sshd, with the
	// test's key and the pinned host key.
	h.sh(t, `umask 077 && printf '%s' "$1" > /tmp/rs-id`, string(key))
	w := h.guestWorker(t, "rs", fmt.Sprintf(`targets:
  vm:
    kind: static
    transport: ssh
    ssh: {host: 127.0.0.1, port: 22, user: %s, identity_file: /tmp/rs-id, host_key: %q}
replications:
  - {source: %s, target: vm, target_dataset: %s}
`, h.vm.User, h.vm.HostKey, src, dst))
	w.start()

	resumeSends := regexp.MustCompile(`"zfs",\s*"send",\s*"-t",`)
	prev := ""
	for i, name := range []string{"s1", "s2"} {
		file := fmt.Sprintf("f%d", i+1)
		sum := h.writeRandom(t, "/"+src.String()+"/"+file, 24)
		s := snap(t, src, name)
		h.sh(t, `zfs snapshot "$1"`, s.String())
		// The stream the workflow will send (its own snapshot exists
		// already, so the workflow reuses it).
		size, err := strconv.ParseInt(strings.TrimSpace(h.sh(t, `if [ -n "$2" ]; then zfs send -I "$2" "$1"; else zfs send "$1"; fi | wc -c`, s.String(), prev)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		w.arm("send", size*2/3)
		run, err := w.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "resume-vm-" + name, TaskQueue: w.queue}, workflows.ReplicateName,
			workflows.ReplicateInput{Source: src.String(), Target: "vm", TargetDataset: dst.String(), Snapshot: name, HeartbeatTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		held := w.waitHeld(run, "send")
		resumedBefore := len(resumeSends.FindAllString(w.log(), -1))
		w.kill() // SIGKILL mid-send
		w.start()
		var res workflows.ReplicateResult
		if err := run.Get(ctx, &res); err != nil {
			t.Fatalf("%s: %v; worker log:\n%s", name, err, w.log())
		}
		t.Logf("%s: stream %d bytes, killed after %d, then %+v", name, size, held, res.Send)
		if n := len(resumeSends.FindAllString(w.log(), -1)) - resumedBefore; n != 1 || !res.Send.Resumed {
			t.Errorf("%s: %d resumed sends (zfs send -t) after the kill, report resumed=%v; want 1", name, n, res.Send.Resumed)
		}
		if held >= size {
			t.Errorf("%s: held at %d of %d bytes: not mid-send", name, held, size)
		}
		if total := held + res.Send.Bytes; total*2 >= size*3 {
			t.Errorf("%s: %d + %d bytes sent in all for a %d-byte stream: not resumed (>= 1.5x)", name, held, res.Send.Bytes, size)
		}
		if tok := h.prop(t, dst, "receive_resume_token"); tok != "-" {
			t.Errorf("%s: token left on the target: %q", name, tok)
		}
		if got := h.sha256(t, "/"+dst.String()+"/"+file); got != sum {
			t.Errorf("%s: target %s %s, source %s", name, file, got, sum)
		}
		prev = s.String()
	}
}
