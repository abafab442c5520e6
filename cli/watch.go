package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"zcloud/contract"
	"zcloud/progress"
	"zcloud/workflows"
)

// watch prints progress of a running workflow until it ends, then decodes
// its result into res. It reads every second: live progress comes from
// the worker running the activity (package progress), not from the
// heartbeats the server holds, which can be many seconds old.
func watch(ctx context.Context, cl client.Client, run client.WorkflowRun, out io.Writer, res any) error {
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, res) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("workflow %s failed: %w", run.GetID(), err)
			}
			return nil
		case <-ctx.Done():
			fmt.Fprintf(out, "stopped watching; the workflow keeps running (zcloud status %s)\n", run.GetID())
			return ctx.Err()
		case <-tick.C:
			line := progressLine(ctx, cl, run.GetID(), run.GetRunID())
			if line != "" && line != last {
				fmt.Fprintln(out, "  "+line)
				last = line
			}
		}
	}
}

// progressLine combines the status query with the progress of pending
// activities, those of running child workflows (a session's replications)
// included.
func progressLine(ctx context.Context, cl client.Client, id, runID string) string {
	var parts []string
	var children []string
	if v, err := cl.QueryWorkflow(ctx, id, runID, workflows.StatusQuery); err == nil {
		var st map[string]any
		if v.Get(&st) == nil {
			if p, ok := st["phase"].(string); ok {
				parts = append(parts, p)
			}
			children = runningChildren(st)
		}
	}
	if desc, err := cl.DescribeWorkflowExecution(ctx, id, runID); err == nil {
		parts = append(parts, pendingActivities(ctx, desc)...)
	}
	for _, c := range children {
		if desc, err := cl.DescribeWorkflowExecution(ctx, c, ""); err == nil {
			parts = append(parts, pendingActivities(ctx, desc)...)
		}
	}
	return strings.Join(parts, " | ")
}

// runningChildren are the child workflows a status names as running (a
// Session's datasets).
func runningChildren(st map[string]any) []string {
	ds, _ := st["datasets"].([]any)
	var ids []string
	for _, d := range ds {
		m, _ := d.(map[string]any)
		if id, _ := m["child_id"].(string); id != "" && m["state"] == "running" {
			ids = append(ids, id)
		}
	}
	return ids
}

// pendingActivities describes each pending activity, with its progress.
func pendingActivities(ctx context.Context, desc *workflowservice.DescribeWorkflowExecutionResponse) []string {
	var lines []string
	for _, pa := range desc.GetPendingActivities() {
		s := pa.GetActivityType().GetName()
		if pa.GetAttempt() > 1 {
			s += fmt.Sprintf(" (attempt %d", pa.GetAttempt())
			if m := pa.GetMaximumAttempts(); m > 0 {
				s += fmt.Sprintf(" of %d", m)
			}
			if f := pa.GetLastFailure(); f != nil {
				s += ": " + f.GetMessage()
			}
			s += ")"
		}
		if p := activityProgress(ctx, pa); p != "" {
			s += " " + p
		}
		lines = append(lines, s)
	}
	return lines
}

// activityProgress is a pending activity's progress: live from the worker
// when the CLI can reach it, else the last heartbeat the server has, with
// its age; "" when it has none.
func activityProgress(ctx context.Context, pa *workflow.PendingActivityInfo) string {
	hd := pa.GetHeartbeatDetails()
	if hd == nil || len(hd.GetPayloads()) == 0 {
		return ""
	}
	dc := converter.GetDefaultDataConverter()
	var p contract.Progress
	if err := dc.FromPayload(hd.GetPayloads()[len(hd.GetPayloads())-1], &p); err != nil || p.Phase == "" {
		var raw json.RawMessage
		if dc.FromPayload(hd.GetPayloads()[0], &raw) == nil {
			return string(raw)
		}
		return ""
	}
	if p.Live != "" {
		if live, err := progress.Fetch(ctx, p.Live); err == nil {
			return formatLive(live)
		}
	}
	s := formatProgress(p)
	if at := pa.GetLastHeartbeatTime(); at != nil {
		s += fmt.Sprintf(" (heartbeat %s ago)", time.Since(at.AsTime()).Round(time.Second))
	}
	return s
}

// formatLive is a live snapshot: bytes, share of the estimate, rate over
// the last seconds and the time left.
func formatLive(p progress.Snapshot) string {
	return formatProgress(contract.Progress{Phase: p.Phase, Bytes: p.Bytes, Total: p.Total, BytesPerSec: p.BytesPerSec, Detail: p.Detail})
}

func formatProgress(p contract.Progress) string {
	s := p.Phase + " " + humanBytes(p.Bytes)
	if p.Total > 0 {
		s += fmt.Sprintf(" of %s (%.0f%%)", humanBytes(p.Total), 100*float64(p.Bytes)/float64(p.Total))
	}
	if p.BytesPerSec > 0 {
		s += fmt.Sprintf(" at %s/s", humanBytes(int64(p.BytesPerSec)))
		if p.Total > p.Bytes {
			eta := time.Duration(float64(p.Total-p.Bytes) / p.BytesPerSec * float64(time.Second))
			s += ", ETA " + eta.Round(time.Second).String()
		}
	}
	if p.Detail != "" {
		s += " " + p.Detail
	}
	return s
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
