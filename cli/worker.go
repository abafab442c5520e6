package cli

import (
	"github.com/spf13/cobra"

	"zcloud/workerapp"
)

func workerCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (same as the zcloud-worker binary)",
		Long: `Runs the worker that executes zcloud's workflows and activities until
SIGINT/SIGTERM. Run it on the host that owns the source pool: activities run
zfs there and reach targets over SSH with the configured keys.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return workerapp.Run(a.cfgPath) },
	}
}
