package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zcloud/config"
)

// updateSchedule rewrites an existing schedule's spec, action, overlap
// policy and catch-up window to opts (what `apply`/`schedule` commands do
// when the schedule already exists), keeping its state (paused, notes).
func updateSchedule(ctx context.Context, h client.ScheduleHandle, opts client.ScheduleOptions) error {
	return h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		s := in.Description.Schedule
		s.Spec = &opts.Spec
		s.Action = opts.Action
		if s.Policy == nil {
			s.Policy = &client.SchedulePolicies{}
		}
		s.Policy.Overlap = opts.Overlap
		s.Policy.CatchupWindow = opts.CatchupWindow
		return &client.ScheduleUpdate{Schedule: &s}, nil
	}})
}

// desiredSchedule is one schedule a config wants, with how to describe it.
type desiredSchedule struct {
	Opts client.ScheduleOptions
	What string // e.g. "policy/tank: every 15m"
}

// syncSchedules makes the server's schedules whose IDs start with one of
// prefixes match want: creates the missing, updates the existing, deletes
// the ones no longer wanted (removedNote says what deleting leaves behind),
// and prints each change; dryRun only prints.
func syncSchedules(ctx context.Context, sc client.ScheduleClient, want []desiredSchedule, prefixes []string, removedNote string, out io.Writer, dryRun bool) error {
	verb := func(s string) string {
		if dryRun {
			return "would " + s
		}
		return s
	}
	wanted := map[string]bool{}
	for _, d := range want {
		opts := d.Opts
		wanted[opts.ID] = true
		h := sc.GetHandle(ctx, opts.ID)
		_, err := h.Describe(ctx)
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			if !dryRun {
				if _, err := sc.Create(ctx, opts); err != nil {
					return fmt.Errorf("create schedule %s: %w", opts.ID, err)
				}
			}
			fmt.Fprintf(out, "%s %s\n", verb("create"), d.What)
		case err != nil:
			return fmt.Errorf("schedule %s: %w", opts.ID, err)
		default:
			if !dryRun {
				if err := updateSchedule(ctx, h, opts); err != nil {
					return fmt.Errorf("update schedule %s: %w", opts.ID, err)
				}
			}
			fmt.Fprintf(out, "%s %s\n", verb("update"), d.What)
		}
	}
	it, err := sc.List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return fmt.Errorf("list schedules: %w", err)
	}
	var stale []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		for _, p := range prefixes {
			if strings.HasPrefix(e.ID, p) && !wanted[e.ID] {
				stale = append(stale, e.ID)
				break
			}
		}
	}
	slices.Sort(stale)
	for _, id := range stale {
		if !dryRun {
			if err := sc.GetHandle(ctx, id).Delete(ctx); err != nil {
				var nf *serviceerror.NotFound
				if !errors.As(err, &nf) {
					return fmt.Errorf("delete schedule %s: %w", id, err)
				}
			}
		}
		fmt.Fprintf(out, "%s %s (%s)\n", verb("remove"), id, removedNote)
	}
	return nil
}

// scheduleSyncCmd completes c (its Use, Short, Long and Example set) as a
// command that makes one family of Temporal Schedules match the config
// (archive schedule, policy apply, staging schedule): apply does the work;
// with --dry-run it only prints what would change.
func scheduleSyncCmd(a *app, c *cobra.Command, apply func(ctx context.Context, cl client.Client, cfg *config.Config, out io.Writer, dryRun bool) error) *cobra.Command {
	var dryRun bool
	c.Args = cobra.NoArgs
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		cl, cfg, err := a.client()
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := signalContext()
		defer cancel()
		return apply(ctx, cl, cfg, cmd.OutOrStdout(), dryRun)
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change and change nothing")
	return c
}
