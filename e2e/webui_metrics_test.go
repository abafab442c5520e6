package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"zcloud/internal/testenv"
	"zcloud/workflows"
)

// The operator's console, end to end through the CLI and a `zcloud worker`
// process: a replication to a target pool that does not exist fails within
// a minute with the cause in `zcloud status ID` and in the run's current
// details, and the Web UI's list finds it by filtering on its dataset
// (the visibility API with ZcloudDataset). Each failure reaches the
// operator's webhook with its cause. /metrics then shows, per
// dataset, the replication that succeeded, the one that failed, an
// archive run that failed, and the Temporal SDK's own metrics.
func TestFailingJobsFoundByDatasetAndCounted(t *testing.T) {
	e := newEnv(t)
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q", t.TempDir()))
	data := w.ds.String()
	missing := e.src.Pool.String() + "/missing" // archived, but no such dataset
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort())
	// The operator's webhook: a real HTTP endpoint that keeps what it gets.
	var hookMu sync.Mutex
	var hooked []notifyBody
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b notifyBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		hookMu.Lock()
		hooked = append(hooked, b)
		hookMu.Unlock()
	}))
	t.Cleanup(hook.Close)
	y := fmt.Sprintf(`
temporal: {address: %q, namespace: %q, task_queue: %q}
metrics: {listen: %q}
notify: {webhook: {url: %q}}
keys: {dir: %q}
targets:
  backup:
    transport: ssh
    ssh: {host: 127.0.0.1, port: %d, user: %s, identity_file: %q, host_key: %q, connect_timeout: 5s}
replications:
  - {source: %s, target: backup, target_dataset: %s/data}
  - {source: %s, target: backup, target_dataset: nosuchpool/data}
archive: {store: {%s}, recipients: [%q], host_identity: host, datasets: [{dataset: %s}]}
`, e.temporal.HostPort, e.temporal.Namespace, e.queue, listen, hook.URL, w.keysDir, e.sshd.Port, e.sshd.User, e.sshd.ClientKeyPath, e.sshd.HostKey,
		data, e.dst.Pool, data, w.storeY, w.owner.Recipient().String(), missing)
	if err := os.WriteFile(e.cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	w1 := e.startWorkerProcess()
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	zcloud := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"--config", e.cfgPath}, args...)...).CombinedOutput()
		return string(out), err
	}

	if out, err := zcloud("replicate", data, "--to", "backup:"+e.dst.Pool.String()+"/data"); err != nil {
		t.Fatalf("replicate: %v\n%s", err, out)
	}
	begin := time.Now()
	out, err := zcloud("replicate", data, "--to", "backup:nosuchpool/data")
	took := time.Since(begin)
	t.Logf("replicate to a missing pool (%s): %v\n%s", took, err, out)
	if err == nil || !strings.Contains(out, "pool nosuchpool does not exist") {
		t.Fatalf("replicate to a missing pool: %v\n%s", err, out)
	}
	if took > time.Minute {
		t.Errorf("the failure took %s", took)
	}
	badID := workflows.ReplicateWorkflowID(data, "backup", "nosuchpool/data")
	if out, _ := zcloud("status", badID); !strings.Contains(out, "pool nosuchpool does not exist") {
		t.Errorf("zcloud status %s lacks the cause:\n%s", badID, out)
	}

	// The Web UI's list filter, through the same visibility API.
	ctx := e.ctx(time.Minute)
	q := fmt.Sprintf("ZcloudDataset = '%s' AND ZcloudKind = 'replicate' AND ExecutionStatus = 'Failed'", data)
	resp, err := e.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: e.temporal.Namespace, Query: q})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range resp.GetExecutions() {
		ids = append(ids, x.GetExecution().GetWorkflowId())
	}
	if len(ids) != 1 || ids[0] != badID {
		t.Errorf("%s found %v, want [%s]", q, ids, badID)
	}
	desc, err := e.client.DescribeWorkflowExecution(ctx, badID, "")
	if err != nil {
		t.Fatal(err)
	}
	var summary string
	if p := desc.GetExecutionConfig().GetUserMetadata().GetSummary(); p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &summary)
	}
	if summary != "replicate "+data+" to backup" {
		t.Errorf("summary %q", summary)
	}
	v, err := e.client.QueryWorkflow(ctx, badID, "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatal(err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	if d := md.GetCurrentDetails(); !strings.Contains(d, "**phase:** failed") || !strings.Contains(d, "pool nosuchpool does not exist") {
		t.Errorf("current details:\n%s", d)
	}

	// An archive run that fails: its dataset does not exist.
	if out, err := zcloud("archive", "run", missing); err == nil {
		t.Fatalf("archive of a missing dataset succeeded:\n%s", out)
	}

	// Each failure reached the webhook, with its cause, before its run
	// ended; the success did not.
	hookMu.Lock()
	got := append([]notifyBody(nil), hooked...)
	hookMu.Unlock()
	if len(got) != 2 ||
		got[0].Subject != "replicate "+data+" to backup failed" || !strings.Contains(got[0].Body, "pool nosuchpool does not exist") ||
		got[0].Severity != "error" || got[0].Fields["workflow_id"] != badID || got[0].Fields["dataset"] != data ||
		got[1].Subject != "archive "+missing+" to archive failed" || got[1].Fields["workflow_id"] != workflows.ArchiveWorkflowID(missing) {
		t.Errorf("notifications: %+v", got)
	}

	m := scrape(t, "http://"+listen+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`zcloud_runs_total{dataset=%q,kind="replicate",outcome="ok",tier="backup"} 1`, data),
		fmt.Sprintf(`zcloud_runs_total{dataset=%q,kind="replicate",outcome="error",tier="backup"} 1`, data),
		fmt.Sprintf(`zcloud_runs_total{dataset=%q,kind="archive",outcome="error",tier="archive"} 1`, missing),
		fmt.Sprintf(`zcloud_last_run_failed{dataset=%q,kind="archive",tier="archive"} 1`, missing),
	} {
		if !m.has(want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The successful replication: when, how old its copy is, its bytes.
	for _, name := range []string{"zcloud_last_success_timestamp_seconds", "zcloud_lag_seconds", "zcloud_run_bytes_total"} {
		series := fmt.Sprintf(`%s{dataset=%q,kind="replicate",tier="backup"}`, name, data)
		if v, ok := m.value(series); !ok || v <= 0 {
			t.Errorf("/metrics: %s = %v (present %v), want > 0", series, v, ok)
		}
	}
	// The SDK's own metrics, on the same endpoint.
	if !m.hasPrefix("temporal_request_total{") || !m.hasPrefix("temporal_workflow_task_execution_latency_seconds_bucket{") {
		t.Errorf("/metrics lacks the Temporal SDK's metrics")
	}

	// A restarted worker reads the jobs back from Temporal: the lag and the
	// failure stay visible (and alertable) before the jobs run again.
	syscall.Kill(-w1.Process.Pid, syscall.SIGKILL)
	w1.Wait()
	e.startWorkerProcess()
	m = scrapeWhenUp(t, "http://"+listen+"/metrics")
	if v, ok := m.value(fmt.Sprintf(`zcloud_lag_seconds{dataset=%q,kind="replicate",tier="backup"}`, data)); !ok || v <= 0 {
		t.Errorf("after a restart: replicate lag %v (present %v)", v, ok)
	}
	if want := fmt.Sprintf(`zcloud_last_run_failed{dataset=%q,kind="archive",tier="archive"} 1`, missing); !m.has(want) {
		t.Errorf("after a restart: /metrics lacks %s", want)
	}
}

// notifyBody is what the webhook receives (cloud/notify.Webhook).
type notifyBody struct {
	Subject  string            `json:"subject"`
	Body     string            `json:"body"`
	Severity string            `json:"severity"`
	Fields   map[string]string `json:"fields"`
}

// metricsText is one scrape of a Prometheus endpoint, line by line.
type metricsText []string

func scrape(t *testing.T, url string) metricsText {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var lines metricsText
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// scrapeWhenUp scrapes a worker that is starting: its endpoint answers
// once it has read the finished runs back (a readiness wait, bounded).
func scrapeWhenUp(t *testing.T, url string) metricsText {
	t.Helper()
	waitFor(t, 2*time.Minute, "the worker's metrics endpoint", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return scrape(t, url)
}

func (m metricsText) has(line string) bool {
	for _, l := range m {
		if l == line {
			return true
		}
	}
	return false
}

func (m metricsText) hasPrefix(p string) bool {
	for _, l := range m {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func (m metricsText) value(series string) (float64, bool) {
	for _, l := range m {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			_, err := fmt.Sscan(v, &f)
			return f, err == nil
		}
	}
	return 0, false
}
