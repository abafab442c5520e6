package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"zcloud/contract"
	"zcloud/workflows"
)

// watch prints progress of a running workflow until it ends, then decodes
// its result into res.
func watch(ctx context.Context, cl client.Client, run client.WorkflowRun, out io.Writer, res any) error {
	done := make(chan error, 1)
	go func() { done <- run.Get(ctx, res) }()
	tick := time.NewTicker(2 * time.Second)
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

// progressLine combines the status query with pending activities'
// heartbeat details.
func progressLine(ctx context.Context, cl client.Client, id, runID string) string {
	var parts []string
	if v, err := cl.QueryWorkflow(ctx, id, runID, workflows.StatusQuery); err == nil {
		var st map[string]any
		if v.Get(&st) == nil {
			if p, ok := st["phase"].(string); ok {
				parts = append(parts, p)
			}
		}
	}
	desc, err := cl.DescribeWorkflowExecution(ctx, id, runID)
	if err == nil {
		parts = append(parts, pendingActivities(desc)...)
	}
	return strings.Join(parts, " | ")
}

func pendingActivities(desc *workflowservice.DescribeWorkflowExecutionResponse) []string {
	var lines []string
	dc := converter.GetDefaultDataConverter()
	for _, pa := range desc.GetPendingActivities() {
		s := pa.GetActivityType().GetName()
		if pa.GetAttempt() > 1 {
			s += fmt.Sprintf(" (attempt %d", pa.GetAttempt())
			if f := pa.GetLastFailure(); f != nil {
				s += ": " + f.GetMessage()
			}
			s += ")"
		}
		if hd := pa.GetHeartbeatDetails(); hd != nil && len(hd.GetPayloads()) > 0 {
			var p contract.Progress
			if err := dc.FromPayload(hd.GetPayloads()[len(hd.GetPayloads())-1], &p); err == nil && p.Phase != "" {
				s += " " + formatProgress(p)
			} else {
				var raw json.RawMessage
				if dc.FromPayload(hd.GetPayloads()[0], &raw) == nil {
					s += " " + string(raw)
				}
			}
		}
		lines = append(lines, s)
	}
	return lines
}

func formatProgress(p contract.Progress) string {
	s := p.Phase + " " + humanBytes(p.Bytes)
	if p.Total > 0 {
		s += fmt.Sprintf(" of %s (%.0f%%)", humanBytes(p.Total), 100*float64(p.Bytes)/float64(p.Total))
	}
	if p.BytesPerSec > 0 {
		s += fmt.Sprintf(" at %s/s", humanBytes(int64(p.BytesPerSec)))
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
