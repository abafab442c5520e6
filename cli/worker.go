package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"zcloud/workerapp"
)

func workerCmd(a *app) *cobra.Command {
	var check bool
	c := &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (same as the zcloud-worker binary)",
		Long: `Runs the worker that executes zcloud's workflows and activities until
SIGINT/SIGTERM. Run it on the host that owns the source pool: activities run
zfs there and reach targets over SSH with the configured keys. While Temporal
is not reachable it waits, logging why.

--check runs no worker: it exits 0 when a zcloud worker on this host is
connected and polls the configured task queue, else 1 with the reason (the
container's health check).`,
		Example: "  zcloud worker\n  zcloud worker --check",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !check {
				return workerapp.Run(a.cfgPath)
			}
			cl, cfg, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 20*time.Second)
			defer cancel()
			if err := workerapp.CheckPolling(ctx, cl, cfg.Temporal.TaskQueue, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: a worker on this host polls task queue %s\n", cfg.Temporal.TaskQueue)
			return nil
		},
	}
	c.Flags().BoolVar(&check, "check", false, "exit 0 if a worker on this host polls the task queue (health check)")
	return c
}
