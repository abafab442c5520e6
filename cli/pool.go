package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zcloud/config"
	"zcloud/poolplan"
	"zcloud/searchattr"
	"zcloud/workflows"
)

func poolCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "pool",
		Short: "EBS-backed pools: create, grow (in place or rolling replace), scrub, status, destroy",
		Long: `Manage the ZFS pools listed under 'pools:' in the config: pools of EBS volumes
attached to an EC2 instance, with zpool run over SSH on the pool's target.
Every command starts a durable Temporal workflow (id pool/NAME, one operation
per pool at a time) and prints its progress; Ctrl-C stops watching, not the
workflow. See docs/pools.md.`,
	}
	c.AddCommand(poolCreateCmd(a), poolGrowCmd(a), poolScrubCmd(a), poolStatusCmd(a), poolDestroyCmd(a))
	return c
}

// poolArg checks NAME against the config once, here at the edge.
func poolArg(cfg *config.Config, name, cfgPath string) (config.Pool, error) {
	p, ok := cfg.Pool(name)
	if !ok {
		return p, fmt.Errorf("no pool named %q in %s (known: %s)", name, cfgPath, strings.Join(cfg.PoolNames(), ", "))
	}
	return p, nil
}

// startPoolOp starts a pool workflow under the pool's id; a second
// operation while one runs is refused with a pointer to it.
func startPoolOp(ctx context.Context, cl client.Client, cfg *config.Config, pool, wf string, in any) (client.WorkflowRun, error) {
	run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{
		ID: workflows.PoolWorkflowID(pool), TaskQueue: cfg.Temporal.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK answers a running id with that run's
		// handle, and e.g. a scrub would "start" by watching a grow.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, searchattr.Job{Kind: workflows.JobKind(wf), Pool: pool}), wf, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		what := "another operation"
		if d, derr := cl.DescribeWorkflowExecution(ctx, workflows.PoolWorkflowID(pool), ""); derr == nil {
			info := d.GetWorkflowExecutionInfo()
			what = "a " + info.GetType().GetName()
			if p := info.GetParentExecution(); p != nil {
				// A session's hold on its pool: name the session.
				what += " started by " + p.GetWorkflowId()
			}
		}
		return nil, fmt.Errorf("%s is running on pool %s (workflow %s; one operation per pool at a time, scheduled scrubs included); watch it with 'zcloud pool status %s' and start this when it has finished", what, pool, workflows.PoolWorkflowID(pool), pool)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s of %s: %w", wf, pool, err)
	}
	return run, nil
}

func runPoolOp(cmd *cobra.Command, a *app, name, wf string, in any, noWait bool, report func(io.Writer, workflows.PoolResult)) error {
	cl, cfg, err := a.checkedClient(func(cfg *config.Config) error { _, err := poolArg(cfg, name, a.cfgPath); return err })
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := signalContext()
	defer cancel()
	out := cmd.OutOrStdout()
	run, err := startPoolOp(ctx, cl, cfg, name, wf, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s %s: workflow %s, run %s\n", wf, name, run.GetID(), run.GetRunID())
	if noWait {
		return nil
	}
	var res workflows.PoolResult
	if err := watch(ctx, cl, run, out, &res); err != nil {
		return err
	}
	report(out, res)
	return nil
}

func poolCreateCmd(a *app) *cobra.Command {
	var noWait bool
	c := &cobra.Command{
		Use:   "create NAME",
		Short: "Create the pool's EBS volumes, attach them, zpool create with the layout, export",
		Long: `Starts PoolCreate: creates vdevs × width EBS volumes (type, size, IOPS,
throughput and tags from the config, in the instance's availability zone,
tagged zcloud:pool=NAME and zcloud:slot=vN/dM), attaches them one by one,
waits for each by-id device node on the instance, LUKS-formats and opens them
when luks.enabled (key from the key source, on stdin), runs zpool create
(ashift=12, autoexpand=on) and exports the pool.

Safe to re-run after a failure: volumes are found again by their tokens.`,
		Example: "  zcloud pool create archive",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPoolOp(cmd, a, args[0], workflows.PoolCreateName, workflows.PoolInput{Pool: args[0]}, noWait, func(out io.Writer, r workflows.PoolResult) {
				fmt.Fprintf(out, "done: pool %s created from %d volumes in %.1fs\n", r.Pool, len(r.Volumes), r.Seconds)
			})
		},
	}
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	return c
}

func poolGrowCmd(a *app) *cobra.Command {
	var in workflows.PoolGrowInput
	var noWait bool
	c := &cobra.Command{
		Use:   "grow NAME --size GIB [--mode in-place|rolling-replace]",
		Short: "Grow every volume of the pool: ModifyVolume in place, or a rolling replace",
		Long: `Starts PoolGrow.

--mode in-place (default): ModifyVolume each volume to --size, wait for each
modification to reach optimizing/completed (polled on durable timers), then
expand the pool (zpool online -e). AWS allows 4 modifications per volume in
any rolling 24 h, each after the previous completed; zcloud enforces that
itself and the workflow sleeps on a timer until the next is allowed.

--mode rolling-replace: scrub first (a scrub that repairs anything or finds
errors stops before any device is touched); then per vdev, one device at a
time: new volume, attach, [LUKS open], zpool replace, wait for the resilver,
verify the pool is healthy, and only then detach and delete the old volume.
--parallel vdevs are worked on at once. Also changes the volume type (--type).`,
		Example: `  zcloud pool grow archive --size 200
  zcloud pool grow archive --size 500 --mode rolling-replace --type st1 --parallel 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Pool = args[0]
			if in.Mode != workflows.GrowInPlace && in.Mode != workflows.GrowRollingReplace {
				return fmt.Errorf("--mode must be %s or %s", workflows.GrowInPlace, workflows.GrowRollingReplace)
			}
			if in.SizeGiB <= 0 {
				return fmt.Errorf("--size (GiB) is required")
			}
			if in.VolumeType != "" {
				if _, ok := poolplan.Limits(poolplan.VolumeType(in.VolumeType)); !ok {
					return fmt.Errorf("--type %q is not an EBS volume type (%v)", in.VolumeType, poolplan.VolumeTypes())
				}
				if in.Mode != workflows.GrowRollingReplace {
					return fmt.Errorf("--type needs --mode rolling-replace")
				}
			}
			return runPoolOp(cmd, a, in.Pool, workflows.PoolGrowName, in, noWait, func(out io.Writer, r workflows.PoolResult) {
				fmt.Fprintf(out, "done: pool %s grew from %s to %s (%d steps, %.1fs)\n", r.Pool, humanBytes(int64(r.SizeBefore)), humanBytes(int64(r.SizeAfter)), r.Steps, r.Seconds)
			})
		},
	}
	c.Flags().Int64Var(&in.SizeGiB, "size", 0, "new size of every volume in GiB")
	c.Flags().StringVar(&in.Mode, "mode", workflows.GrowInPlace, "in-place or rolling-replace")
	c.Flags().StringVar(&in.VolumeType, "type", "", "new volume type (rolling-replace)")
	c.Flags().Int64Var(&in.IOPS, "iops", 0, "new volumes' IOPS (rolling-replace)")
	c.Flags().Int64Var(&in.Throughput, "throughput", 0, "new volumes' throughput in MiB/s (rolling-replace)")
	c.Flags().IntVar(&in.ParallelVdevs, "parallel", 0, "vdevs replaced at once (default: the pool's parallel_vdevs)")
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	return c
}

func poolScrubCmd(a *app) *cobra.Command {
	var noWait, schedule, unschedule bool
	c := &cobra.Command{
		Use:   "scrub NAME",
		Short: "Scrub the pool now, or (--schedule) on the config's scrub_schedule",
		Long: `Starts PoolScrub: imports the pool if needed, scrubs it, waits (heartbeating
progress), reports repaired bytes and errors, and exports it again if it
imported it. A scrub that repaired anything or found errors fails the
workflow with its report.

--schedule creates or updates a Temporal Schedule running the scrub on the
pool's scrub_schedule (cron); --unschedule deletes it. A scheduled scrub runs
under the pool's operation id (pool/NAME) like every other pool operation:
while a grow (or create, destroy) runs there it does nothing and its result
says "skipped: grow in progress"; a grow is refused while it scrubs.`,
		Example: "  zcloud pool scrub archive\n  zcloud pool scrub archive --schedule",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if schedule || unschedule {
				return scrubSchedule(cmd, a, name, unschedule)
			}
			return runPoolOp(cmd, a, name, workflows.PoolScrubName, workflows.PoolInput{Pool: name}, noWait, func(out io.Writer, r workflows.PoolResult) {
				if r.Skipped != "" {
					fmt.Fprintln(out, r.Skipped)
				}
				if r.Scrub != nil {
					fmt.Fprintf(out, "done: %s in %.1fs\n", r.Scrub.Summary(), r.Scrub.Seconds)
				}
			})
		},
	}
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	c.Flags().BoolVar(&schedule, "schedule", false, "create or update the scrub Schedule from scrub_schedule")
	c.Flags().BoolVar(&unschedule, "unschedule", false, "delete the scrub Schedule")
	return c
}

func scrubSchedule(cmd *cobra.Command, a *app, name string, remove bool) error {
	var p config.Pool
	cl, cfg, err := a.checkedClient(func(cfg *config.Config) (err error) { p, err = poolArg(cfg, name, a.cfgPath); return err })
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := signalContext()
	defer cancel()
	sc := cl.ScheduleClient()
	id := workflows.PoolScrubScheduleID(name)
	out := cmd.OutOrStdout()
	h := sc.GetHandle(ctx, id)
	_, descErr := h.Describe(ctx)
	exists := descErr == nil
	if remove {
		if !exists {
			fmt.Fprintf(out, "no schedule %s\n", id)
			return nil
		}
		if err := h.Delete(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted schedule %s\n", id)
		return nil
	}
	if p.ScrubSchedule == "" {
		return fmt.Errorf("pool %s has no scrub_schedule in %s", name, a.cfgPath)
	}
	opts := client.ScheduleOptions{ID: id, Spec: client.ScheduleSpec{CronExpressions: []string{p.ScrubSchedule}},
		Action: scheduledJob(&client.ScheduleWorkflowAction{ID: id, Workflow: workflows.PoolScrubName, Args: []any{workflows.PoolInput{Pool: name}}, TaskQueue: cfg.Temporal.TaskQueue},
			searchattr.Job{Kind: searchattr.KindScrub, Pool: name}),
		Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP}
	if exists {
		if err := updateSchedule(ctx, h, opts); err != nil {
			return err
		}
		fmt.Fprintf(out, "updated schedule %s: scrub %s at %q\n", id, name, p.ScrubSchedule)
		return nil
	}
	if _, err := sc.Create(ctx, opts); err != nil {
		return err
	}
	fmt.Fprintf(out, "created schedule %s: scrub %s at %q\n", id, name, p.ScrubSchedule)
	return nil
}

func poolStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show the pool's latest operation: plan, current step, progress, pending activities",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			cl, _, err := a.checkedClient(func(cfg *config.Config) error { _, err := poolArg(cfg, name, a.cfgPath); return err })
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			id := workflows.PoolWorkflowID(name)
			desc, err := cl.DescribeWorkflowExecution(ctx, id, "")
			if err != nil {
				var nf *serviceerror.NotFound
				if errors.As(err, &nf) {
					fmt.Fprintf(out, "pool %s: no operation has run yet\n", name)
					return nil
				}
				return fmt.Errorf("workflow %s: %w", id, err)
			}
			info := desc.GetWorkflowExecutionInfo()
			fmt.Fprintf(out, "pool %s: %s (%s), started %s\n", name, info.GetType().GetName(), info.GetStatus(),
				info.GetStartTime().AsTime().Local().Format("2006-01-02 15:04:05"))
			if v, err := cl.QueryWorkflow(ctx, id, "", workflows.StatusQuery); err == nil {
				var st workflows.PoolStatus
				if v.Get(&st) == nil {
					printPoolStatus(out, st)
				}
			} else {
				fmt.Fprintf(out, "  (status query: %v)\n", err)
			}
			for _, l := range pendingActivities(ctx, desc) {
				fmt.Fprintf(out, "  activity: %s\n", l)
			}
			if sd, err := cl.ScheduleClient().GetHandle(ctx, workflows.PoolScrubScheduleID(name)).Describe(ctx); err == nil {
				next := ""
				if ts := sd.Info.NextActionTimes; len(ts) > 0 {
					next = ", next " + ts[0].Local().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(out, "  scrub schedule: %s%s\n", strings.Join(sd.Schedule.Spec.CronExpressions, " "), next)
			}
			return nil
		},
	}
}

func printPoolStatus(out io.Writer, st workflows.PoolStatus) {
	fmt.Fprintf(out, "  operation: %s\n  phase: %s\n", st.Operation, st.Phase)
	if st.Progress != "" {
		fmt.Fprintf(out, "  progress: %s\n", st.Progress)
	}
	if len(st.Current) > 0 {
		fmt.Fprintf(out, "  current: %s\n", strings.Join(st.Current, ", "))
	}
	if !st.WaitingUntil.IsZero() {
		fmt.Fprintf(out, "  waiting until: %s\n", st.WaitingUntil.Local().Format("2006-01-02 15:04:05"))
	}
	if st.SizeBefore > 0 {
		fmt.Fprintf(out, "  size: %s", humanBytes(int64(st.SizeBefore)))
		if st.SizeAfter > 0 {
			fmt.Fprintf(out, " -> %s", humanBytes(int64(st.SizeAfter)))
		}
		fmt.Fprintln(out)
	}
	if st.Scrub != nil {
		fmt.Fprintf(out, "  %s\n", st.Scrub.Summary())
	}
	if st.Error != "" {
		fmt.Fprintf(out, "  error: %s\n", st.Error)
	}
	done := map[string]bool{}
	for _, d := range st.Done {
		done[d] = true
	}
	cur := map[string]bool{}
	for _, c := range st.Current {
		cur[c] = true
	}
	if len(st.Plan) > 0 {
		fmt.Fprintln(out, "  plan:")
		for _, s := range st.Plan {
			mark := "  "
			switch {
			case done[s]:
				mark = "✓ "
			case cur[s]:
				mark = "→ "
			}
			fmt.Fprintf(out, "    %s%s\n", mark, s)
		}
	}
	for _, g := range st.Grow {
		line := fmt.Sprintf("    %s: %s %d -> %d GiB", g.VolumeID, g.Action, g.FromGiB, g.ToGiB)
		if !g.NotBefore.IsZero() {
			line += " not before " + g.NotBefore.Local().Format("2006-01-02 15:04")
		}
		if g.Reason != "" {
			line += " (" + g.Reason + ")"
		}
		fmt.Fprintln(out, line)
	}
	if len(st.Volumes) > 0 {
		b, _ := json.Marshal(st.Volumes)
		fmt.Fprintf(out, "  new volumes: %s\n", b)
	}
}

func poolDestroyCmd(a *app) *cobra.Command {
	var confirm string
	var noWait bool
	c := &cobra.Command{
		Use:   "destroy NAME --yes-destroy NAME",
		Short: "Destroy the zpool and delete every EBS volume tagged as the pool's",
		Long: `Starts PoolDestroy: zpool destroy (importing the pool first if it is only
exported), then detaches and deletes every volume tagged zcloud:pool=NAME.
Volumes without that tag are never touched; tagged volumes attached to another
instance are left alone and reported. All data in the pool is lost: repeat the
pool's name in --yes-destroy.`,
		Example: "  zcloud pool destroy scratch --yes-destroy scratch",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if confirm != name {
				return fmt.Errorf("destroying pool %s deletes its data and volumes: confirm with --yes-destroy %s", name, name)
			}
			return runPoolOp(cmd, a, name, workflows.PoolDestroyName, workflows.PoolDestroyInput{Pool: name, Confirm: confirm}, noWait, func(out io.Writer, r workflows.PoolResult) {
				if r.Destroyed != nil {
					fmt.Fprintf(out, "done: pool %s destroyed; deleted volumes %v", r.Pool, r.Destroyed.Deleted)
					if len(r.Destroyed.Skipped) > 0 {
						fmt.Fprintf(out, "; left alone (attached elsewhere): %v", r.Destroyed.Skipped)
					}
					fmt.Fprintln(out)
				}
			})
		},
	}
	c.Flags().StringVar(&confirm, "yes-destroy", "", "the pool's name, to confirm")
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	return c
}
