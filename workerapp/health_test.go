package workerapp

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/internal/tclient"
	"zcloud/internal/testenv"
	"zcloud/workflows"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// The health check fails while no worker polls the queue, and passes once
// this host's worker has taken a task from it.
func TestCheckPollingSeesThisHostsWorker(t *testing.T) {
	srv := testenv.SharedTemporal(t)
	queue := testenv.RandomName("health")
	cfg, err := config.Parse([]byte(fmt.Sprintf("temporal: {address: %q, namespace: %q, task_queue: %q}\n", srv.HostPort, srv.Namespace, queue)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A fresh dev server answers "Frontend is not healthy yet" for a moment.
	cl, err := tclient.DialWait(ctx, cfg.Temporal, zap.NewNop(), tclient.Backoff{First: 50 * time.Millisecond, Max: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := CheckPolling(ctx, cl, queue, time.Now()); err == nil || !strings.Contains(err.Error(), "pollers: none") {
		t.Fatalf("before any worker: %v", err)
	}
	w := New(cl, cfg, activities.New(cfg, zap.NewNop()))
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// A workflow that ends in its first task: the worker has polled.
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, workflows.ReplicateName, workflows.ReplicateInput{})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err == nil || !strings.Contains(err.Error(), "a target is required") {
		t.Fatalf("workflow: %v", err)
	}
	if err := CheckPolling(ctx, cl, queue, time.Now()); err != nil {
		t.Fatalf("with a worker: %v", err)
	}
	// A poll older than pollFresh does not count: the worker is gone.
	if err := CheckPolling(ctx, cl, queue, time.Now().Add(pollFresh+time.Minute)); err == nil {
		t.Fatal("a stale poller counted as alive")
	}
}
