package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/searchattr"
	"zcloud/workflows"
	"zcloud/zfsname"
)

func policyCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Snapshot policies: Temporal Schedules, dry-run prune plans, approvals",
		Long: `Each entry under 'policies:' in the config keeps a set number of frequent,
hourly, midday, daily, weekly, monthly, bi-annual and annual snapshots of one
dataset. 'zcloud policy apply' turns them into Temporal Schedules (one per
policy, ID policy/<dataset>). Every run takes a snapshot when one is due, then
prunes what no bucket keeps. A snapshot held by zcloud (replication base
zcloud-<target>, archive chain base zcloud-archive) or by anyone, a protected
one, and (unless include_foreign) one not named by zcloud is never destroyed.
A prune over max_destroy_count / max_destroy_percent waits for
'zcloud policy approve'. See docs/policies.md.`,
	}
	c.AddCommand(policyApplyCmd(a), policyPlanCmd(a), policyApproveCmd(a), policyStatusCmd(a), policyRunCmd(a))
	return c
}

// policyInput is what a policy's Schedule passes to each run.
// A staging job with after_snapshot rides along: each snapshot the run
// takes starts the dataset's staging.
func policyInput(cfg *config.Config, p config.Policy) workflows.PolicyInput {
	in := workflows.PolicyInput{Dataset: p.Dataset, Policy: p.Policy, IncludeForeign: p.IncludeForeign,
		MaxDestroyCount: *p.MaxDestroyCount, MaxDestroyPercent: *p.MaxDestroyPercent, ApprovalTimeout: p.ApprovalTimeout,
		Protected: p.Protections()}
	if s, ok := cfg.StagingFor(p.Dataset); ok && s.AfterSnapshot {
		in.StagingDataset = s.Dataset
	}
	return in
}

// scheduleOptions: overlap ALLOW_ALL so a run whose prune waits for an
// approval (up to a day) never delays or skips the next snapshot (SKIP
// would skip it, BUFFER_ONE would hold it back until the wait ends). Runs
// stay short because the prune is its own workflow with a fixed ID, of
// which only one runs per dataset.
func scheduleOptions(cfg *config.Config, p config.Policy) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:   workflows.ScheduleID(p.Dataset),
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: p.Schedule}}},
		Action: scheduledJob(&client.ScheduleWorkflowAction{
			ID:                 workflows.ScheduleID(p.Dataset), // the server appends the scheduled time
			Workflow:           workflows.SnapshotPolicyName,
			Args:               []any{policyInput(cfg, p)},
			TaskQueue:          cfg.Temporal.TaskQueue,
			WorkflowRunTimeout: time.Hour,
		}, searchattr.Job{Kind: searchattr.KindSnapshot, Datasets: []string{p.Dataset}}),
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
		CatchupWindow: p.CatchUpWindow,
		Note:          "managed by zcloud policy apply",
	}
}

// applyPolicies makes the server's policy Schedules match the config and
// reports each change; dryRun only reports.
func applyPolicies(ctx context.Context, cl client.Client, cfg *config.Config, out io.Writer, dryRun bool) error {
	var want []desiredSchedule
	for _, p := range cfg.Policies {
		opts := scheduleOptions(cfg, p)
		desc := fmt.Sprintf("%s: every %s, catch-up window %s, overlap allow-all", opts.ID, p.Schedule, p.CatchUpWindow)
		if in := policyInput(cfg, p); in.StagingDataset != "" {
			desc += ", then staging into " + in.StagingDataset
		}
		want = append(want, desiredSchedule{opts, desc})
	}
	return syncSchedules(ctx, cl.ScheduleClient(), want, []string{workflows.ScheduleIDPrefix},
		"no longer configured; its snapshots are kept", out, dryRun)
}

func policyApplyCmd(a *app) *cobra.Command {
	return scheduleSyncCmd(a, &cobra.Command{
		Use:   "apply",
		Short: "Create or update one Temporal Schedule per configured policy; remove the others",
		Long: `Makes the Temporal Schedules match 'policies:' in the config: a Schedule
policy/<dataset> per policy, running the SnapshotPolicy workflow every
'schedule' interval with overlap policy ALLOW_ALL (a prune waiting for approval
never holds up the next snapshot) and the policy's catch_up_window (how late a
run missed while Temporal was down may still start). Schedules named policy/...
that are no longer configured are deleted; their snapshots are left alone.
Paused schedules stay paused.`,
		Example: "  zcloud policy apply --dry-run\n  zcloud policy apply",
	}, applyPolicies)
}

// configuredPolicy finds dataset's policy in the config.
func (a *app) configuredPolicy(dataset string) (config.Policy, *config.Config, error) {
	cfg, err := a.config()
	if err != nil {
		return config.Policy{}, nil, err
	}
	ds, err := zfsname.ParseDataset(dataset)
	if err != nil {
		return config.Policy{}, nil, err
	}
	p, ok := cfg.PolicyFor(ds.String())
	if !ok {
		var known []string
		for _, q := range cfg.Policies {
			known = append(known, q.Dataset)
		}
		return p, nil, fmt.Errorf("no policy for %s in %s (policies: %s)", ds, a.cfgPath, strings.Join(known, ", "))
	}
	return p, cfg, nil
}

func policyPlanCmd(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "plan DATASET",
		Short: "Print the prune plan for DATASET now (dry run: nothing is destroyed)",
		Long: `Runs the PolicyPlan workflow on the worker (next to the pool) with the
dataset's policy from the config and prints every snapshot with what a prune
would do to it and why: the buckets that keep it ("daily 2026-11-20 (1 of 7)"),
holds ("held by zcloud-backup (newest snapshot replicated to target backup)"),
protections, "not taken by zcloud", or "kept by no bucket of the policy" for
those it would destroy. It also says whether the prune would need approval.`,
		Example: "  zcloud policy plan tank/data\n  zcloud policy plan tank/data --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, cfg, err := a.configuredPolicy(args[0])
			if err != nil {
				return err
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			id := fmt.Sprintf("policy-plan/%s/%s", p.Dataset, time.Now().UTC().Format("20060102T150405.000Z"))
			run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{ID: id, TaskQueue: cfg.Temporal.TaskQueue,
				WorkflowExecutionTimeout: 10 * time.Minute}, searchattr.Job{Kind: searchattr.KindPlan, Datasets: []string{p.Dataset}}), workflows.PolicyPlanName, policyInput(cfg, p))
			if err != nil {
				return fmt.Errorf("start plan: %w", err)
			}
			var rep contract.PlanReport
			if err := run.Get(ctx, &rep); err != nil {
				return fmt.Errorf("plan %s: %w", p.Dataset, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printPlan(out, rep)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return c
}

func printPlan(out io.Writer, rep contract.PlanReport) {
	fmt.Fprintf(out, "dataset %s, plan %s\n", rep.Dataset, rep.ID)
	fmt.Fprint(out, rep.Plan.String())
	if !rep.TagsListed {
		fmt.Fprintln(out, "(this ZFS cannot list hold tags: held snapshots show their hold count)")
	}
	if rep.NeedsApproval {
		fmt.Fprintf(out, "needs approval: %s\n", rep.Verdict)
	} else {
		fmt.Fprintf(out, "no approval needed: %s\n", rep.Verdict)
	}
}

// pruneTarget turns DATASET or a prune workflow ID into the workflow ID.
func pruneTarget(arg string) (string, error) {
	if strings.HasPrefix(arg, "policy-prune/") {
		return arg, nil
	}
	ds, err := zfsname.ParseDataset(arg)
	if err != nil {
		return "", fmt.Errorf("want a dataset or a policy-prune/... workflow ID: %w", err)
	}
	return workflows.PruneWorkflowID(ds.String()), nil
}

func queryPrune(ctx context.Context, cl client.Client, id string) (workflows.PruneStatus, error) {
	var st workflows.PruneStatus
	v, err := cl.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func defaultBy() string {
	user := os.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	host, _ := os.Hostname()
	return user + "@" + host
}

func policyApproveCmd(a *app) *cobra.Command {
	var reject bool
	var planID, by string
	c := &cobra.Command{
		Use:   "approve DATASET|WORKFLOW_ID",
		Short: "Approve (or --reject) the prune plan waiting for approval",
		Long: `A prune that would destroy more snapshots than the policy's
max_destroy_count or max_destroy_percent waits (up to approval_timeout, default
24h) in the workflow policy-prune/<dataset>. This prints the waiting plan and
sends the approve-prune Update. Approving destroys exactly the snapshots of
that plan (each re-checked first: one held since the plan was made stays);
--reject, or no answer before the timeout, destroys nothing.

The update names the plan ID (--plan, default: the plan waiting now); the
workflow refuses a plan ID that is not the one waiting, so an approval never
applies to a plan its sender did not see.`,
		Example: "  zcloud policy approve tank/data\n  zcloud policy approve tank/data --plan 3f2a9c1d0b7e --by alice\n  zcloud policy approve policy-prune/tank/data --reject",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := pruneTarget(args[0])
			if err != nil {
				return err
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			st, err := queryPrune(ctx, cl, id)
			if err != nil {
				return fmt.Errorf("prune %s: %w", id, err)
			}
			if st.Phase != workflows.PhaseAwaitingApproval || st.Report == nil {
				return fmt.Errorf("%s is not waiting for approval (phase: %s)", id, st.Phase)
			}
			printPlan(out, *st.Report)
			if planID == "" {
				planID = st.Report.ID
			}
			return sendApproval(ctx, cl, out, id, workflows.ApproveUpdate, workflows.Approval{Approve: !reject, By: by, PlanID: planID})
		},
	}
	c.Flags().BoolVar(&reject, "reject", false, "reject the plan: nothing is destroyed")
	c.Flags().StringVar(&planID, "plan", "", "the plan ID you reviewed (default: the plan waiting now)")
	c.Flags().StringVar(&by, "by", defaultBy(), "who decides, recorded in the workflow history")
	return c
}

// sendApproval sends an approval (or rejection) Update to a workflow waiting
// for one (a prune, a cycle's deletion), waits until it is applied and prints
// the workflow's answer.
func sendApproval(ctx context.Context, cl client.Client, out io.Writer, id, update string, ap workflows.Approval) error {
	h, err := cl.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: update,
		Args: []any{ap}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	var res string
	if err := h.Get(ctx, &res); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	fmt.Fprintln(out, res)
	return nil
}

func policyStatusCmd(a *app) *cobra.Command {
	var verbose bool
	c := &cobra.Command{
		Use:   "status [DATASET]",
		Short: "Show each policy's Schedule and its latest prune (waiting approvals first of all)",
		Long: `For each configured policy (or just DATASET): the Schedule (interval, paused,
last and next runs, runs skipped or missed) and the latest prune workflow with
its phase; a prune waiting for approval shows its plan ID, verdict, deadline
and plan table. -v prints the plan table for every prune.`,
		Example: "  zcloud policy status\n  zcloud policy status tank/data",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, cfg, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			datasets := []string{}
			if len(args) == 1 {
				ds, err := zfsname.ParseDataset(args[0])
				if err != nil {
					return err
				}
				datasets = append(datasets, ds.String())
			} else {
				for _, p := range cfg.Policies {
					datasets = append(datasets, p.Dataset)
				}
			}
			if len(datasets) == 0 {
				return fmt.Errorf("no policies in %s", a.cfgPath)
			}
			out := cmd.OutOrStdout()
			for _, ds := range datasets {
				printPolicyStatus(ctx, cl, out, ds, verbose)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the plan table of every prune")
	return c
}

func printPolicyStatus(ctx context.Context, cl client.Client, out io.Writer, ds string, verbose bool) {
	fmt.Fprintf(out, "%s\n", ds)
	sid := workflows.ScheduleID(ds)
	desc, err := cl.ScheduleClient().GetHandle(ctx, sid).Describe(ctx)
	if err != nil {
		fmt.Fprintf(out, "  schedule %s: %v (run 'zcloud policy apply')\n", sid, err)
	} else {
		every := "?"
		if sp := desc.Schedule.Spec; sp != nil && len(sp.Intervals) > 0 {
			every = sp.Intervals[0].Every.String()
		}
		paused := ""
		if desc.Schedule.State != nil && desc.Schedule.State.Paused {
			paused = " PAUSED"
		}
		fmt.Fprintf(out, "  schedule %s: every %s%s, %d runs", sid, every, paused, desc.Info.NumActions)
		if n := desc.Info.NumActionsMissedCatchupWindow; n > 0 {
			fmt.Fprintf(out, ", %d missed (outside the catch-up window)", n)
		}
		fmt.Fprintln(out)
		if r := desc.Info.RecentActions; len(r) > 0 {
			last := r[len(r)-1]
			fmt.Fprintf(out, "  last run: %s", last.ActualTime.Local().Format("2006-01-02 15:04:05"))
			if last.StartWorkflowResult != nil {
				fmt.Fprintf(out, " (%s)", last.StartWorkflowResult.WorkflowID)
			}
			fmt.Fprintln(out)
		}
		if n := desc.Info.NextActionTimes; len(n) > 0 {
			fmt.Fprintf(out, "  next run: %s\n", n[0].Local().Format("2006-01-02 15:04:05"))
		}
	}
	pid := workflows.PruneWorkflowID(ds)
	st, err := queryPrune(ctx, cl, pid)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			fmt.Fprintf(out, "  prune: none yet\n")
		} else {
			fmt.Fprintf(out, "  prune %s: %v\n", pid, err)
		}
		return
	}
	fmt.Fprintf(out, "  prune %s: %s", pid, st.Phase)
	if st.Report != nil {
		fmt.Fprintf(out, ", plan %s: %s", st.Report.ID, st.Report.Verdict)
	}
	fmt.Fprintln(out)
	if st.Error != "" {
		fmt.Fprintf(out, "  error: %s\n", st.Error)
	}
	if st.Decision != nil {
		verdict := "rejected"
		if st.Decision.Approve {
			verdict = "approved"
		}
		fmt.Fprintf(out, "  %s by %s\n", verdict, st.Decision.By)
	}
	if st.Result != nil {
		fmt.Fprintf(out, "  destroyed %d", len(st.Result.Destroyed))
		for _, s := range st.Result.Skipped {
			fmt.Fprintf(out, "; kept %s (%s)", s.Name, s.Reason)
		}
		fmt.Fprintln(out)
	}
	if st.Phase == workflows.PhaseAwaitingApproval && st.Report != nil {
		fmt.Fprintf(out, "  waiting for approval until %s: zcloud policy approve %s [--reject]\n",
			st.Deadline.Local().Format("2006-01-02 15:04:05"), ds)
	}
	if st.Report != nil && (verbose || st.Phase == workflows.PhaseAwaitingApproval) {
		for _, l := range strings.Split(strings.TrimRight(st.Report.Plan.String(), "\n"), "\n") {
			fmt.Fprintf(out, "    %s\n", l)
		}
	}
}

func policyRunCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "run DATASET",
		Short: "Trigger the policy's Schedule now (snapshot if due, then prune)",
		Long: `Starts one run of the dataset's Schedule immediately, as if its time had
come: a snapshot is taken if one is due, then a prune runs (unless one is
still waiting for approval).`,
		Example: "  zcloud policy run tank/data",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := zfsname.ParseDataset(args[0])
			if err != nil {
				return err
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			sid := workflows.ScheduleID(ds.String())
			if err := cl.ScheduleClient().GetHandle(ctx, sid).Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
				return fmt.Errorf("trigger %s: %w", sid, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "triggered %s\n", sid)
			return nil
		},
	}
}
