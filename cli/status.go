package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"zcloud/workflows"
)

func statusCmd(a *app) *cobra.Command {
	var asJSON bool
	lim := overviewLimits{}
	c := &cobra.Command{
		Use:   "status [WORKFLOW_ID]",
		Short: "Without an argument: every dataset's copies, their lag, jobs and warnings; with one: that workflow",
		Long: `Without an argument, prints the catalog across tiers: one block per
configured dataset with its newest snapshot on the source, on each replica and in
the archive, the age of each, the last success and failure of the job that
feeds each copy, what runs now, and warnings (a copy older than --max-age or
holding nothing, a job that failed --max-failures times in a row). --json gives
the same for scripts. It reads the pools and the archive on the worker (a
short Catalog workflow), so a worker must be running.

With WORKFLOW_ID, shows that workflow's state, its status query and pending
activities' progress, and for a finished one its end, duration, bytes or error.`,
		Example: "  zcloud status\n  zcloud status --json\n  zcloud status replicate/tank/data/backup1:backup/data",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				cl, cfg, err := a.client()
				if err != nil {
					return err
				}
				defer cl.Close()
				ctx, cancel := signalContext()
				defer cancel()
				ov, err := buildOverview(ctx, cl, cfg, time.Now(), lim)
				if err != nil {
					return err
				}
				if asJSON {
					return printOverviewJSON(cmd.OutOrStdout(), ov)
				}
				printOverview(cmd.OutOrStdout(), ov)
				return nil
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			desc, err := cl.DescribeWorkflowExecution(ctx, args[0], "")
			if err != nil {
				return fmt.Errorf("workflow %s: %w", args[0], err)
			}
			info := desc.GetWorkflowExecutionInfo()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "workflow %s (%s)\n  state: %s\n  started: %s\n", args[0], info.GetType().GetName(),
				info.GetStatus(), info.GetStartTime().AsTime().Local().Format("2006-01-02 15:04:05"))
			if v, err := cl.QueryWorkflow(ctx, args[0], "", "status"); err == nil {
				var st any
				if v.Get(&st) == nil {
					b, _ := json.MarshalIndent(st, "  ", "  ")
					fmt.Fprintf(out, "  status: %s\n", b)
				}
			}
			for _, l := range pendingActivities(ctx, desc) {
				fmt.Fprintf(out, "  activity: %s\n", l)
			}
			if info.GetCloseTime() != nil {
				end := info.GetCloseTime().AsTime()
				fmt.Fprintf(out, "  ended: %s (took %s)\n", end.Local().Format("2006-01-02 15:04:05"),
					end.Sub(info.GetStartTime().AsTime()).Round(time.Second))
				var res any
				if info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_CANCELED {
					fmt.Fprintf(out, "  cause: %s\n", cancelCause(ctx, cl, args[0], info.GetExecution().GetRunId()))
				} else if err := cl.GetWorkflow(ctx, args[0], "").Get(ctx, &res); err != nil {
					// The cause, not the "workflow execution error (type: ...)" wrapping.
					fmt.Fprintf(out, "  error: %s\n", rootMessage(err))
				} else if n, ok := findBytes(res); ok {
					fmt.Fprintf(out, "  bytes: %s\n", humanBytes(n))
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "the overview as JSON")
	c.Flags().DurationVar(&lim.maxAge, "max-age", 26*time.Hour, "warn when a replica's or the archive's newest snapshot is older (0: never)")
	c.Flags().IntVar(&lim.maxFailures, "max-failures", 2, "warn when a job failed this many times in a row")
	return c
}

// findBytes finds the first "bytes" figure in a workflow result, the
// shallowest first (ReplicateResult's send.bytes, a restore's total).
func findBytes(v any) (int64, bool) {
	level := []any{v}
	for len(level) > 0 {
		var next []any
		for _, x := range level {
			switch m := x.(type) {
			case map[string]any:
				for _, k := range []string{"bytes", "plain_bytes", "stored_bytes"} {
					if f, ok := m[k].(float64); ok {
						return int64(f), true
					}
				}
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					next = append(next, m[k])
				}
			case []any:
				next = append(next, m...)
			}
		}
		level = next
	}
	return 0, false
}

func cancelCmd(a *app) *cobra.Command {
	var reason, by string
	c := &cobra.Command{
		Use:   "cancel WORKFLOW_ID",
		Short: "Cancel a running workflow; its compensations (terminate the instance, release holds) still run",
		Long: `Asks the workflow to stop. Running activities are cancelled and the workflow's
clean-up steps run (a session terminates or stops its instance and exports the
pool). Who cancelled it and --reason are recorded in the workflow's history
(the Web UI shows them); 'zcloud status WORKFLOW_ID' and the overview show the
final state with them and the step it stopped at.`,
		Example: `  zcloud cancel replicate/tank/data/backup1:backup/data --reason "maintenance window"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, cfg, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			// The service call, not client.CancelWorkflow: it carries the
			// reason and who asked into the history.
			_, err = cl.WorkflowService().RequestCancelWorkflowExecution(ctx, &workflowservice.RequestCancelWorkflowExecutionRequest{
				Namespace:         cfg.Temporal.Namespace,
				WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: args[0]},
				Identity:          by,
				Reason:            reason,
			})
			if err != nil {
				return fmt.Errorf("cancel %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancellation requested for %s\n", args[0])
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, recorded in the workflow's history and shown by zcloud status")
	c.Flags().StringVar(&by, "by", defaultBy(), "who cancels, recorded in the workflow's history")
	return c
}

// cancelCause says who cancelled a run and why (from the cancel request in
// its history) and the step it stopped at (from its status query), e.g.
// `cancelled by ops@host: maintenance window (at send)`. Without a
// request in the history (cancelled by its parent) it says "cancelled".
func cancelCause(ctx context.Context, cl client.Client, id, runID string) string {
	msg := "cancelled"
	it := cl.GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			break
		}
		if at := ev.GetWorkflowExecutionCancelRequestedEventAttributes(); at != nil {
			if at.GetIdentity() != "" {
				msg += " by " + at.GetIdentity()
			}
			if at.GetCause() != "" {
				msg += ": " + at.GetCause()
			}
			break
		}
	}
	if v, err := cl.QueryWorkflow(ctx, id, runID, workflows.StatusQuery); err == nil {
		var st struct {
			Error string `json:"error"`
		}
		if v.Get(&st) == nil {
			if step, ok := strings.CutSuffix(st.Error, ": cancelled"); ok && step != "" {
				msg += " (at " + step + ")"
			}
		}
	}
	return msg
}
