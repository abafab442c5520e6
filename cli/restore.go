package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/searchattr"
	"zcloud/workflows"
	"zcloud/zfsname"
)

func restoreCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "restore",
		Short: "Restore a dataset from the cold archive: plan with cost estimates, retrieve, verify, zfs receive",
		Long: `Restores need nothing from the lost server: the manifest and the streams are
read from the store (archive.store in the config) and decrypted with the
archive's private key, which the restoring worker reads from its own key source
by name (--identity, default archive.restore_identity). The key never travels
through Temporal. See docs/archive.md.`,
	}
	c.AddCommand(restorePlanCmd(a), restoreRunCmd(a), restoreStatusCmd(a))
	return c
}

type restoreFlags struct {
	identity, tier, to string
	days               int
	poll               time.Duration
}

func (f *restoreFlags) add(c *cobra.Command, withTarget bool) {
	c.Flags().StringVar(&f.identity, "identity", "", "key name of the archive's private key in the worker's key source (default: archive.restore_identity)")
	c.Flags().StringVar(&f.tier, "tier", "", "retrieval tier: Expedited, Standard or Bulk (default: archive.restore_tier; at most archive.max_restore_tier)")
	if withTarget {
		c.Flags().StringVar(&f.to, "to", "", "[TARGET:]DATASET to receive into (a new dataset; TARGET: a configured target, restored over SSH)")
		c.Flags().IntVar(&f.days, "days", 0, "days restored copies of cold objects stay readable (default: archive.restore_days; at most archive.max_restore_days)")
		c.Flags().DurationVar(&f.poll, "poll", 0, "interval between retrieval polls (default: archive.restore_poll, else from the tier)")
	}
}

// input validates the arguments once, here at the edge.
func (f *restoreFlags) input(cfg *config.Config, arg string, planOnly bool) (workflows.RestoreInput, error) {
	dsName, snap, _ := strings.Cut(arg, "@")
	ds, err := zfsname.ParseDataset(dsName)
	if err != nil {
		return workflows.RestoreInput{}, err
	}
	if snap != "" {
		if _, err := ds.Snapshot(snap); err != nil {
			return workflows.RestoreInput{}, err
		}
	}
	in := workflows.RestoreInput{Dataset: ds.String(), Snapshot: snap, Identity: f.identity, Tier: f.tier, Days: f.days,
		PollInterval: f.poll, PlanOnly: planOnly}
	if in.Identity == "" {
		in.Identity = cfg.Archive.RestoreIdentity
	}
	if in.Identity == "" {
		return in, fmt.Errorf("name the archive's private key: --identity NAME (a key in the worker's key source) or archive.restore_identity")
	}
	if in.Tier == "" {
		in.Tier = cfg.Archive.RestoreTier
	}
	switch in.Tier {
	case "Expedited", "Standard", "Bulk":
	default:
		return in, fmt.Errorf("--tier must be Expedited, Standard or Bulk, not %q", in.Tier)
	}
	if in.Days == 0 {
		in.Days = cfg.Archive.RestoreDays
	}
	if in.PollInterval == 0 {
		in.PollInterval = cfg.Archive.RestorePoll
	}
	if planOnly {
		return in, nil
	}
	if f.to == "" {
		return in, fmt.Errorf("--to [TARGET:]DATASET is required")
	}
	target, tds, ok := strings.Cut(f.to, ":")
	if !ok {
		target, tds = "", f.to
	}
	dst, err := zfsname.ParseDataset(tds)
	if err != nil {
		return in, fmt.Errorf("--to: %w", err)
	}
	if target != "" {
		if _, ok := cfg.Targets[target]; !ok {
			return in, fmt.Errorf("--to: no target named %q in the config (known: %s)", target, strings.Join(cfg.TargetNames(), ", "))
		}
	}
	in.Target, in.TargetDataset = target, dst.String()
	return in, nil
}

func restorePlanCmd(a *app) *cobra.Command {
	var f restoreFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "plan DATASET[@SNAPSHOT]",
		Short: "Print the streams a restore needs and its size, time and cost per retrieval tier (changes nothing)",
		Long: `Reads the dataset's manifest from the store with the private key (on the
worker) and plans the chain to SNAPSHOT (default: the newest archived): the full
of the newest cycle holding it and every incremental up to it. Prints each
object, the bytes to retrieve, and per tier how long retrieval takes and what it
costs (retrieval requests + per-GB retrieval; egress if downloaded outside AWS).`,
		Example: "  zcloud restore plan tank/data --identity owner\n  zcloud restore plan tank/data@zcloud_20260101T000000Z --tier Bulk",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in workflows.RestoreInput
			cl, cfg, err := a.checkedClient(func(cfg *config.Config) (err error) { in, err = f.input(cfg, args[0], true); return err })
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			id := fmt.Sprintf("restore-plan/%s/%s", in.Dataset, time.Now().UTC().Format("20060102T150405.000Z"))
			run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{ID: id, TaskQueue: cfg.Temporal.TaskQueue,
				WorkflowExecutionTimeout: 10 * time.Minute}, searchattr.Job{Kind: searchattr.KindPlan, Datasets: []string{in.Dataset}, Target: "archive"}), workflows.RestoreName, in)
			if err != nil {
				return fmt.Errorf("start plan: %w", err)
			}
			var st workflows.RestoreStatus
			if err := run.Get(ctx, &st); err != nil {
				return fmt.Errorf("plan %s: %w", in.Dataset, err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st.Plan)
			}
			printRestorePlan(out, st.Plan)
			return nil
		},
	}
	f.add(c, false)
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	return c
}

func printRestorePlan(out io.Writer, p *contract.RestorePlan) {
	if p == nil {
		return
	}
	fmt.Fprintf(out, "restore %s@%s: %d streams, %s plain, %s stored\n", p.Dataset, p.Snapshot, len(p.Chain), humanBytes(p.PlainBytes), humanBytes(p.StoredBytes))
	if p.FromPrevious {
		fmt.Fprintln(out, "WARNING: manifest.json was unreadable; planned from manifest.prev.json")
	}
	if p.ParityBytes > 0 {
		fmt.Fprintf(out, "parity: %s more retrieved (%.0f%% of the streams), counted in the estimates below\n",
			humanBytes(p.ParityBytes), 100*float64(p.ParityBytes)/float64(max(p.StoredBytes, 1)))
	}
	for i, s := range p.Chain {
		from := ""
		if s.Kind != "full" {
			from = "@" + s.From.Name + " -> "
		}
		par := ""
		if s.Parity != "" {
			par = fmt.Sprintf(" + %s parity %s", humanBytes(s.ParityBytes), s.Parity)
		}
		fmt.Fprintf(out, "  %2d. %-11s %s@%s  %s stored%s (%s)  %s\n", i+1, s.Kind, from, s.To.Name, humanBytes(s.StoredSize), par, s.Class, s.Key)
	}
	if !p.NeedsRestore {
		fmt.Fprintln(out, "objects are immediately readable: no retrieval wait")
	}
	fmt.Fprintln(out, "estimates per retrieval tier:")
	for _, e := range p.Estimates {
		fmt.Fprintf(out, "  %s\n", e)
	}
	fmt.Fprintf(out, "chosen: %s\n", p.Chosen)
}

func restoreRunCmd(a *app) *cobra.Command {
	var f restoreFlags
	var noWait bool
	c := &cobra.Command{
		Use:   "run DATASET[@SNAPSHOT] --to [TARGET:]DATASET",
		Short: "Restore from the archive: request retrieval, wait durably, verify, decrypt and zfs receive in order",
		Long: `Starts the Restore workflow (ID restore/<dataset>/<target>:<dataset>):

  plan      the chain to SNAPSHOT (default: newest), with estimates per tier
  request   retrieval of every object at --tier (S3 RestoreObject / vault jobs)
  wait      durably: a timer between short polls (hours in production; the
            worker may stop and start meanwhile)
  receive   one stream per activity, in order: parts downloaded and checked
            against the manifest's SHA-256 before a byte reaches zfs receive,
            decrypted with the private key (read by the worker from its key
            source), piped into zfs receive on this host or, with TARGET:, on
            a configured target over SSH. A stream the target already has (by
            snapshot GUID) is skipped, so a crash resumes at the next stream.

The target dataset must not exist.`,
		Example: "  zcloud restore run tank/data --to tank/restored --identity owner --tier Bulk\n  zcloud restore run tank/data@zcloud_20260101T000000Z --to backup1:pool/data",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in workflows.RestoreInput
			cl, cfg, err := a.checkedClient(func(cfg *config.Config) (err error) { in, err = f.input(cfg, args[0], false); return err })
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			id := workflows.RestoreWorkflowID(in.Dataset, in.Target, in.TargetDataset)
			run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{ID: id, TaskQueue: cfg.Temporal.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
				searchattr.Job{Kind: searchattr.KindRestore, Datasets: []string{in.Dataset}, Target: "archive"}), workflows.RestoreName, in)
			if err != nil {
				return fmt.Errorf("start restore: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "restoring %s to %s (workflow %s)\n", args[0], f.to, run.GetID())
			if noWait {
				return nil
			}
			var st workflows.RestoreStatus
			if err := watch(ctx, cl, run, out, &st); err != nil {
				return err
			}
			printRestoreStatus(out, st)
			return nil
		},
	}
	f.add(c, true)
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	return c
}

func printRestoreStatus(out io.Writer, st workflows.RestoreStatus) {
	dst := st.TargetDataset
	if st.Target != "" {
		dst = st.Target + ":" + dst
	}
	fmt.Fprintf(out, "%s -> %s: %s (tier %s)\n", st.Dataset, dst, st.Phase, st.Tier)
	if st.Plan != nil {
		fmt.Fprintf(out, "  chain: %d streams to @%s, %s stored\n", len(st.Plan.Chain), st.Plan.Snapshot, humanBytes(st.Plan.StoredBytes))
		fmt.Fprintf(out, "  estimate: %s\n", st.Plan.Chosen)
	}
	if r := st.Retrieval; r != nil {
		fmt.Fprintf(out, "  retrieval: %d of %d objects readable after %d polls", r.Ready, r.Total, st.Polls)
		if !st.WaitingSince.IsZero() {
			fmt.Fprintf(out, ", waiting since %s", st.WaitingSince.Local().Format("2006-01-02 15:04:05"))
		}
		if !st.NextPoll.IsZero() {
			fmt.Fprintf(out, ", next poll %s", st.NextPoll.Local().Format("15:04:05"))
		}
		fmt.Fprintln(out)
	}
	if st.PollFailures > 0 {
		fmt.Fprintf(out, "  status polls: %d failed, retried with backoff (last: %s)\n", st.PollFailures, st.LastPollError)
	}
	for _, r := range st.Received {
		what := fmt.Sprintf("received %s in %.1fs", humanBytes(r.Bytes), r.Seconds)
		if r.Skipped {
			what = "already on the target (skipped)"
		}
		fmt.Fprintf(out, "  %s @%s: %s\n", r.StreamID, r.To, what)
		for _, rp := range r.Repaired {
			fmt.Fprintf(out, "    repaired: %s\n", rp)
		}
	}
	if st.Current != "" {
		fmt.Fprintf(out, "  receiving %s\n", st.Current)
	}
	if st.Error != "" {
		fmt.Fprintf(out, "  error: %s\n", st.Error)
	}
}

func restoreStatusCmd(a *app) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "status WORKFLOW_ID | DATASET --to [TARGET:]DATASET",
		Short: "Show a restore's phase, retrieval progress and streams received",
		Example: "  zcloud restore status restore/tank/data/local:tank/restored\n" +
			"  zcloud restore status tank/data --to tank/restored",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !strings.HasPrefix(id, "restore/") {
				ds, err := zfsname.ParseDataset(id)
				if err != nil {
					return fmt.Errorf("want a restore/... workflow ID or a dataset: %w", err)
				}
				target, tds, ok := strings.Cut(to, ":")
				if !ok {
					target, tds = "", to
				}
				if tds == "" {
					return fmt.Errorf("--to [TARGET:]DATASET names the restore of %s", ds)
				}
				id = workflows.RestoreWorkflowID(ds.String(), target, tds)
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			return printRestoreWorkflow(ctx, cl, cmd.OutOrStdout(), id)
		},
	}
	c.Flags().StringVar(&to, "to", "", "the restore's [TARGET:]DATASET")
	return c
}

func printRestoreWorkflow(ctx context.Context, cl client.Client, out io.Writer, id string) error {
	desc, err := cl.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return fmt.Errorf("restore %s: %w", id, err)
	}
	fmt.Fprintf(out, "workflow %s: %s\n", id, desc.GetWorkflowExecutionInfo().GetStatus())
	v, err := cl.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err != nil {
		return fmt.Errorf("restore %s: %w", id, err)
	}
	var st workflows.RestoreStatus
	if err := v.Get(&st); err != nil {
		return err
	}
	printRestoreStatus(out, st)
	for _, l := range pendingActivities(ctx, desc) {
		fmt.Fprintf(out, "  activity: %s\n", l)
	}
	return nil
}
