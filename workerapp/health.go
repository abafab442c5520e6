package workerapp

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// identityPrefix starts the identity of every zcloud worker on this host;
// Temporal lists it with the task queue's pollers.
func identityPrefix() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return "zcloud-worker@" + host + "@"
}

// Identity names this process's worker to Temporal (Web UI, pollers): the
// host name lets a health check on the same host find it.
func Identity() string { return fmt.Sprintf("%s%d", identityPrefix(), os.Getpid()) }

// pollFresh is how recently a worker must have polled to count as alive:
// a worker long-polls about every minute while idle.
const pollFresh = 2 * time.Minute

// CheckPolling says whether a zcloud worker on this host polls queue (for
// a container's or service's health check): Temporal lists the queue's
// pollers and when each last polled, so it is true only when the worker
// is connected and working, not merely running.
func CheckPolling(ctx context.Context, cl client.Client, queue string, now time.Time) error {
	resp, err := cl.DescribeTaskQueue(ctx, queue, enums.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	var others []string
	for _, p := range resp.GetPollers() {
		if strings.HasPrefix(p.GetIdentity(), identityPrefix()) && now.Sub(p.GetLastAccessTime().AsTime()) < pollFresh {
			return nil
		}
		others = append(others, p.GetIdentity())
	}
	if len(others) == 0 {
		others = []string{"none"}
	}
	return fmt.Errorf("no zcloud worker on this host (%s*) polls task queue %s (pollers: %s)",
		identityPrefix(), queue, strings.Join(others, ", "))
}
