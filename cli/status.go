package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func statusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "status WORKFLOW_ID",
		Short:   "Show a workflow's state, its status query and pending activities' progress",
		Example: `  zcloud status replicate/tank/data/backup1:backup/data`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			for _, l := range pendingActivities(desc) {
				fmt.Fprintf(out, "  activity: %s\n", l)
			}
			return nil
		},
	}
}
