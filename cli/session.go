package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zcloud/config"
	"zcloud/searchattr"
	"zcloud/workflows"
)

// SessionID is the workflow (and Schedule) id of target's session; runs
// started by the Schedule get the scheduled time appended by the server.
func SessionID(target string) string { return "session/" + target }

func sessionCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "session",
		Short: "The daily EC2 backup session: run it now, watch it, schedule it",
		Long: `A session launches (or starts) an ec2 target's instance, waits for SSH with the
host key injected at launch, unlocks the pool's encryption with the key from
the worker's key source (sent on stdin only), imports the pool, replicates
every configured dataset to it, exports, locks, and terminates (or stops) the
instance. Whatever it acquired is given back on failure or cancellation. A spot
interruption notice moves the session to a replacement instance. See
docs/session.md.`,
	}
	c.AddCommand(sessionRunCmd(a), sessionStatusCmd(a), sessionScheduleCmd(a))
	return c
}

// sessionTarget checks that name is an ec2 target in the config.
func sessionTarget(cfg *config.Config, path, name string) error {
	t, ok := cfg.Targets[name]
	if !ok || t.Kind != "ec2" {
		return fmt.Errorf("no ec2 target named %q in %s (ec2 targets: %s)", name, path, strings.Join(cfg.SessionTargets(), ", "))
	}
	return nil
}

func sessionRunCmd(a *app) *cobra.Command {
	var noWait bool
	c := &cobra.Command{
		Use:   "run TARGET",
		Short: "Run a session to an ec2 target now and follow it",
		Long: `Starts the Session workflow for TARGET (an ec2 target in the config) with id
session/TARGET, or follows the one already running under that id, and prints
its progress until it ends, then the result and the cost line. Ctrl-C stops
watching; the session keeps running (cancel it in the Web UI or with
'temporal workflow cancel', and it still terminates its instance).`,
		Example: "  zcloud session run nightly\n  zcloud session run nightly --no-wait",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, cfg, err := a.checkedClient(func(cfg *config.Config) error { return sessionTarget(cfg, a.cfgPath, args[0]) })
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{
				ID: SessionID(args[0]), TaskQueue: cfg.Temporal.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				WorkflowExecutionTimeout: 24 * time.Hour,
			}, sessionJob(cfg, args[0])), workflows.SessionName, workflows.SessionInput{Target: args[0]})
			if err != nil {
				return fmt.Errorf("start session: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "session to %s (workflow %s, run %s)\n", args[0], run.GetID(), run.GetRunID())
			if noWait {
				return nil
			}
			var res workflows.SessionResult
			werr := watch(ctx, cl, run, out, &res)
			if werr != nil && ctx.Err() != nil {
				return werr
			}
			// A failed session still has a result in its status query.
			if werr != nil {
				if v, err := cl.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.StatusQuery); err == nil {
					_ = v.Get(&res.Status)
				}
			}
			printSession(out, res.Status, nil)
			return werr
		},
	}
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the session and return")
	return c
}

func sessionStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status TARGET|WORKFLOW_ID",
		Short: "Show the latest (or a given) session: state, instances, per-dataset progress, cost",
		Long: `For TARGET, finds the newest session (started by 'session run' or by the
Schedule) and prints its state, the instances it used, each dataset's state
with the bytes its running send has moved, and the cost line. A WORKFLOW_ID
(containing '/') names one session.`,
		Example: "  zcloud session status nightly\n  zcloud session status session/nightly-2026-03-02T02:00:00Z",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, cfg, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			id := args[0]
			if !strings.Contains(id, "/") {
				if err := sessionTarget(cfg, a.cfgPath, id); err != nil {
					return err
				}
				if id, err = latestSession(ctx, cl, id); err != nil {
					return err
				}
			}
			desc, err := cl.DescribeWorkflowExecution(ctx, id, "")
			if err != nil {
				return fmt.Errorf("session %s: %w", id, err)
			}
			out := cmd.OutOrStdout()
			info := desc.GetWorkflowExecutionInfo()
			fmt.Fprintf(out, "session %s\n  workflow: %s, started %s\n", id, info.GetStatus(), info.GetStartTime().AsTime().Local().Format("2006-01-02 15:04:05"))
			var st workflows.SessionStatus
			v, err := cl.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
			if err != nil {
				return fmt.Errorf("query %s: %w", id, err)
			}
			if err := v.Get(&st); err != nil {
				return err
			}
			printSession(out, st, func(childID string) string { return childProgress(ctx, cl, childID) })
			for _, l := range pendingActivities(ctx, desc) {
				fmt.Fprintf(out, "  activity: %s\n", l)
			}
			return nil
		},
	}
}

// latestSession finds target's newest session: the manual one or the
// Schedule's running or most recent run.
func latestSession(ctx context.Context, cl client.Client, target string) (string, error) {
	ids := []string{SessionID(target)}
	if d, err := cl.ScheduleClient().GetHandle(ctx, SessionID(target)).Describe(ctx); err == nil {
		for _, r := range d.Info.RunningWorkflows {
			ids = append(ids, r.WorkflowID)
		}
		for _, r := range d.Info.RecentActions {
			if r.StartWorkflowResult != nil {
				ids = append(ids, r.StartWorkflowResult.WorkflowID)
			}
		}
	}
	best, bestTime := "", time.Time{}
	for _, id := range ids {
		desc, err := cl.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			continue
		}
		if t := desc.GetWorkflowExecutionInfo().GetStartTime().AsTime(); best == "" || t.After(bestTime) {
			best, bestTime = id, t
		}
	}
	if best == "" {
		return "", fmt.Errorf("no session found for %s (zcloud session run %s starts one)", target, target)
	}
	return best, nil
}

// childProgress is the bytes line of a running Replicate child's send.
func childProgress(ctx context.Context, cl client.Client, id string) string {
	desc, err := cl.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return ""
	}
	for _, pa := range desc.GetPendingActivities() {
		if p := activityProgress(ctx, pa); p != "" {
			return p
		}
	}
	return ""
}

func printSession(out io.Writer, st workflows.SessionStatus, progress func(childID string) string) {
	fmt.Fprintf(out, "  phase: %s", st.Phase)
	if st.Interruptions > 0 {
		fmt.Fprintf(out, " (%d spot interruption(s))", st.Interruptions)
	}
	fmt.Fprintln(out)
	if st.Snapshot != "" {
		fmt.Fprintf(out, "  snapshot: @%s\n", st.Snapshot)
	}
	for _, i := range st.Instances {
		end := "held"
		if !i.Released.IsZero() {
			end = fmt.Sprintf("released after %s", i.Released.Sub(i.Started).Round(time.Second))
		}
		if i.Interrupted {
			end += ", interrupted"
		}
		fmt.Fprintf(out, "  instance: %s %s %s at %s (%s)\n", i.ID, i.Type, i.Market, i.Host, end)
		if len(i.Volumes) > 0 {
			fmt.Fprintf(out, "    pool volumes: %s\n", strings.Join(i.Volumes, " "))
		}
	}
	for _, d := range st.Datasets {
		line := fmt.Sprintf("  dataset: %s -> %s: %s", d.Source, d.TargetDataset, d.State)
		switch {
		case d.State == "done":
			line += fmt.Sprintf(" (%s, %s)", d.Kind, humanBytes(d.Bytes))
		case d.State == "running" && progress != nil:
			if p := progress(d.ChildID); p != "" {
				line += " " + p
			}
		}
		if d.Error != "" {
			line += ": " + d.Error
		}
		fmt.Fprintln(out, line)
	}
	if st.Cost != "" {
		fmt.Fprintf(out, "  cost: %s\n", st.Cost)
	}
	if st.Error != "" {
		fmt.Fprintf(out, "  error: %s\n", st.Error)
	}
}

// sessionScheduleOptions is target's daily Schedule. Overlap SKIP: a
// session still running (a slow night) is never doubled up on one pool.
func sessionScheduleOptions(cfg *config.Config, target string) (client.ScheduleOptions, string, error) {
	e := cfg.Targets[target].EC2
	h, m, err := e.Schedule.HourMinute()
	if err != nil {
		return client.ScheduleOptions{}, "", err
	}
	id := SessionID(target)
	opts := client.ScheduleOptions{
		ID: id,
		Spec: client.ScheduleSpec{
			Calendars:    []client.ScheduleCalendarSpec{{Hour: []client.ScheduleRange{{Start: h}}, Minute: []client.ScheduleRange{{Start: m}}}},
			TimeZoneName: e.Schedule.TimeZone,
		},
		Action: scheduledJob(&client.ScheduleWorkflowAction{
			ID:                       id,
			Workflow:                 workflows.SessionName,
			Args:                     []any{workflows.SessionInput{Target: target}},
			TaskQueue:                cfg.Temporal.TaskQueue,
			WorkflowExecutionTimeout: 24 * time.Hour,
		}, sessionJob(cfg, target)),
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: time.Hour,
		Note:          "managed by zcloud session schedule",
	}
	return opts, fmt.Sprintf("%s: daily at %02d:%02d %s, overlap skip, catch-up window 1h", id, h, m, e.Schedule.TimeZone), nil
}

func sessionScheduleCmd(a *app) *cobra.Command {
	var dryRun, del bool
	c := &cobra.Command{
		Use:   "schedule [TARGET...]",
		Short: "Create or update the daily Temporal Schedule of each ec2 target (or delete it)",
		Long: `Makes a Temporal Schedule session/TARGET run the Session workflow every day at
the target's ec2.schedule.time in ec2.schedule.time_zone (default 02:00 UTC).
A session still running when the next one is due makes the next one skip
(overlap SKIP); a run missed while Temporal was down starts if it is at most an
hour late. Without TARGET, every ec2 target is scheduled. --delete removes the
Schedules (running sessions go on).`,
		Example: "  zcloud session schedule --dry-run\n  zcloud session schedule nightly\n  zcloud session schedule nightly --delete",
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, cfg, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			targets := args
			if len(targets) == 0 {
				targets = cfg.SessionTargets()
			}
			if len(targets) == 0 {
				return fmt.Errorf("no ec2 targets in %s", a.cfgPath)
			}
			for _, t := range targets {
				if err := sessionTarget(cfg, a.cfgPath, t); err != nil {
					return err
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			return applySessionSchedules(ctx, cl, cfg, targets, cmd.OutOrStdout(), dryRun, del)
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change and change nothing")
	c.Flags().BoolVar(&del, "delete", false, "delete the Schedules instead")
	return c
}

func applySessionSchedules(ctx context.Context, cl client.Client, cfg *config.Config, targets []string, out io.Writer, dryRun, del bool) error {
	sc := cl.ScheduleClient()
	verb := func(s string) string {
		if dryRun {
			return "would " + s
		}
		return s
	}
	for _, t := range targets {
		opts, what, err := sessionScheduleOptions(cfg, t)
		if err != nil {
			return err
		}
		h := sc.GetHandle(ctx, opts.ID)
		_, err = h.Describe(ctx)
		var nf *serviceerror.NotFound
		notFound := errors.As(err, &nf)
		if err != nil && !notFound {
			return fmt.Errorf("schedule %s: %w", opts.ID, err)
		}
		switch {
		case del && notFound:
			fmt.Fprintf(out, "%s: no schedule\n", opts.ID)
		case del:
			if !dryRun {
				if err := h.Delete(ctx); err != nil {
					return fmt.Errorf("delete schedule %s: %w", opts.ID, err)
				}
			}
			fmt.Fprintf(out, "%s %s\n", verb("delete"), opts.ID)
		case notFound:
			if !dryRun {
				if _, err := sc.Create(ctx, opts); err != nil {
					return fmt.Errorf("create schedule %s: %w", opts.ID, err)
				}
			}
			fmt.Fprintf(out, "%s %s\n", verb("create"), what)
		default:
			if !dryRun {
				err := updateSchedule(ctx, h, opts)
				if err != nil {
					return fmt.Errorf("update schedule %s: %w", opts.ID, err)
				}
			}
			fmt.Fprintf(out, "%s %s\n", verb("update"), what)
		}
	}
	return nil
}

// sessionJob: a session replicates every dataset of the target's
// replications.
func sessionJob(cfg *config.Config, target string) searchattr.Job {
	j := searchattr.Job{Kind: searchattr.KindSession, Target: target}
	for _, r := range cfg.ReplicationsTo(target) {
		j.Datasets = append(j.Datasets, r.Source)
	}
	return j
}
