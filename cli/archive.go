package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/keys"
	"zcloud/searchattr"
	"zcloud/workflows"
	"zcloud/zfsname"
)

func archiveCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "archive",
		Short: "Cold archive: full + incremental zfs send streams, encrypted, in S3 Glacier classes, a vault or a directory",
		Long: `Each dataset under 'archive.datasets' in the config is archived as a chain:
a full zfs send stream starts a cycle, then each run adds an incremental from
the last archived snapshot to the newest one (nothing when nothing changed).
Streams are encrypted with age to 'archive.recipients' (their private keys are
not on this host), checksummed (SHA-256 of every part and stream) and listed in
a per-dataset manifest stored next to them. Every 'cycle' a new full starts a
new cycle; the previous cycle is deleted only once the new one is verified and
passes the sanity check, and not before the storage class's minimum duration
unless --force. See docs/archive.md.`,
	}
	c.AddCommand(archiveRunCmd(a), archiveStatusCmd(a), archiveVerifyCmd(a), archiveScheduleCmd(a), archiveApproveCmd(a), archiveKeygenCmd(a))
	return c
}

// archiveInput is what a dataset's Schedule (or archive run) passes.
func archiveInput(cfg *config.Config, d config.ArchiveDataset) workflows.ArchiveInput {
	return workflows.ArchiveInput{Dataset: d.Dataset, Cycle: d.Cycle.Duration(), SanityMinPercent: *d.SanityMinPercent, Raw: d.Raw,
		Class: d.Class, MaxDeleteCycles: *cfg.Archive.MaxDeleteCycles, MaxDeleteBytes: *cfg.Archive.MaxDeleteBytes,
		ApprovalTimeout: cfg.Archive.ApprovalTimeout}
}

func verifyInput(cfg *config.Config, dataset string) workflows.VerifyInput {
	return workflows.VerifyInput{Dataset: dataset, Tier: cfg.Archive.VerifyTier, Days: cfg.Archive.RestoreDays, PollInterval: cfg.Archive.RestorePoll}
}

// archivedDatasets resolves the arguments (or every configured dataset).
func (a *app) archivedDatasets(args []string) ([]config.ArchiveDataset, *config.Config, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	if len(args) == 0 {
		if len(cfg.Archive.Datasets) == 0 {
			return nil, nil, fmt.Errorf("no datasets under archive.datasets in %s", a.cfgPath)
		}
		return cfg.Archive.Datasets, cfg, nil
	}
	var out []config.ArchiveDataset
	for _, arg := range args {
		ds, err := zfsname.ParseDataset(arg)
		if err != nil {
			return nil, nil, err
		}
		d, ok := cfg.ArchiveDatasetFor(ds.String())
		if !ok {
			return nil, nil, fmt.Errorf("%s is not under archive.datasets in %s (archived: %s)", ds, a.cfgPath, strings.Join(cfg.ArchiveDatasetNames(), ", "))
		}
		out = append(out, d)
	}
	return out, cfg, nil
}

func archiveRunCmd(a *app) *cobra.Command {
	var force, acceptSmaller, noWait bool
	c := &cobra.Command{
		Use:   "run [DATASET...]",
		Short: "Archive now: a full (new cycle) or an incremental stream, then cycle rotation",
		Long: `Starts the Archive workflow (ID archive/<dataset>) for each DATASET (default:
every dataset under archive.datasets) and prints its progress:

  plan      full when there is no chain or the cycle is due, else incremental
            from the last archived snapshot to the newest; skipped when there
            is no new snapshot or nothing changed
  upload    zfs send -> age -> SHA-256 -> parts -> store, heartbeating bytes;
            a crash re-sends the stream to the same key (no duplicates)
  hold      the newest archived snapshot is held (tag zcloud-archive) so the
            next incremental's base cannot be destroyed
  verify    a new cycle's objects are checked (HEAD: size + SHA-256) and its
            full must be at least sanity_min_percent of the previous full
  rotate    older cycles are deleted only then, and not before their class's
            minimum storage (GLACIER 90d, DEEP_ARCHIVE 180d) unless --force;
            a deletion over max_delete_cycles / max_delete_bytes waits for
            'zcloud archive approve'`,
		Example: "  zcloud archive run\n  zcloud archive run tank/data --force",
		RunE: func(cmd *cobra.Command, args []string) error {
			dss, cfg, err := a.archivedDatasets(args)
			if err != nil {
				return err
			}
			// The worker refuses a waiver its config does not allow; say so before starting.
			if force && !cfg.Archive.AllowForce {
				return fmt.Errorf("--force needs archive.allow_force: true in the worker's config (docs/archive.md)")
			}
			if acceptSmaller && !cfg.Archive.AllowAcceptSmaller {
				return fmt.Errorf("--accept-smaller needs archive.allow_accept_smaller: true in the worker's config (docs/archive.md)")
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			for _, d := range dss {
				in := archiveInput(cfg, d)
				in.Force, in.AcceptSmaller = force, acceptSmaller
				run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{
					ID: workflows.ArchiveWorkflowID(d.Dataset), TaskQueue: cfg.Temporal.TaskQueue,
					WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				}, workflows.ArchiveJob(d.Dataset)), workflows.ArchiveName, in)
				if err != nil {
					return fmt.Errorf("start archive of %s: %w", d.Dataset, err)
				}
				fmt.Fprintf(out, "archiving %s (workflow %s, run %s)\n", d.Dataset, run.GetID(), run.GetRunID())
				if noWait {
					continue
				}
				var st workflows.ArchiveStatus
				if err := watch(ctx, cl, run, out, &st); err != nil {
					return err
				}
				printArchiveResult(out, st)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "delete old cycles before their storage class's minimum duration (early-deletion fees apply; needs archive.allow_force in the worker's config)")
	c.Flags().BoolVar(&acceptSmaller, "accept-smaller", false, "accept a new full that fails the sanity check (the dataset really shrank; needs archive.allow_accept_smaller in the worker's config)")
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	return c
}

func printArchiveResult(out io.Writer, st workflows.ArchiveStatus) {
	if p := st.Plan; p != nil {
		fmt.Fprintf(out, "  plan: %s: %s\n", p.Action, p.Reason)
	}
	if s := st.Stream; s != nil {
		note := ""
		if s.AlreadyArchived {
			note = " (recorded by an earlier attempt)"
		}
		fmt.Fprintf(out, "  stored %s %s -> %s: %s plain, %s stored, %d parts, class %s%s\n",
			s.Stream.Kind, s.Stream.ID, s.Stream.Key, humanBytes(s.Stream.PlainSize), humanBytes(s.Stream.StoredSize), s.Stream.Parts, s.Stream.Class, note)
	}
	if c := st.Check; c != nil {
		fmt.Fprintf(out, "  cycle %s verified (HEAD + sanity check)\n", c.Cycle)
	}
	if d := st.Deletion; d != nil {
		fmt.Fprintf(out, "  rotation: %s\n", d.Verdict)
		for _, k := range d.Kept {
			fmt.Fprintf(out, "    keep %s: %s\n", k.ID, k.Reason)
		}
	}
	if d := st.Deleted; d != nil {
		fmt.Fprintf(out, "  deleted cycles %s (%d objects, %s)\n", strings.Join(d.Deleted, ", "), d.Objects, humanBytes(d.Bytes))
	}
	fmt.Fprintf(out, "done: %s %s\n", st.Dataset, st.Phase)
}

func archiveStatusCmd(a *app) *cobra.Command {
	var verbose bool
	c := &cobra.Command{
		Use:   "status [DATASET...]",
		Short: "Show each dataset's archive (cycles, streams from the manifest), its last run and Schedules",
		Long: `Reads each dataset's manifest from the store (on the worker, with the host
identity) and prints its cycles, then the latest archive run (a deletion
waiting for approval shows its plan) and the archive and drill Schedules.
-v lists every stream.`,
		Example: "  zcloud archive status\n  zcloud archive status tank/data -v",
		RunE: func(cmd *cobra.Command, args []string) error {
			dss, cfg, err := a.archivedDatasets(args)
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
			for _, d := range dss {
				printArchiveStatus(ctx, cl, cfg, out, d.Dataset, verbose)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every stream")
	return c
}

func describeArchive(ctx context.Context, cl client.Client, cfg *config.Config, dataset string) (contract.ManifestSummary, error) {
	id := fmt.Sprintf("archive-describe/%s/%s", dataset, time.Now().UTC().Format("20060102T150405.000Z"))
	run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{ID: id, TaskQueue: cfg.Temporal.TaskQueue,
		WorkflowExecutionTimeout: 5 * time.Minute}, searchattr.Job{Kind: searchattr.KindCatalog, Datasets: []string{dataset}, Target: "archive"}), workflows.ArchiveDescribeName, dataset)
	if err != nil {
		return contract.ManifestSummary{}, err
	}
	var sum contract.ManifestSummary
	return sum, run.Get(ctx, &sum)
}

func printArchiveStatus(ctx context.Context, cl client.Client, cfg *config.Config, out io.Writer, dataset string, verbose bool) {
	fmt.Fprintf(out, "%s\n", dataset)
	sum, err := describeArchive(ctx, cl, cfg, dataset)
	switch {
	case err != nil:
		fmt.Fprintf(out, "  manifest: %v\n", err)
	case !sum.Found:
		fmt.Fprintf(out, "  manifest: none yet (nothing archived)\n")
	default:
		fmt.Fprintf(out, "  manifest: generation %d, updated %s, %d cycles, %d streams\n", sum.Generation,
			sum.Updated.Local().Format("2006-01-02 15:04:05"), len(sum.Cycles), len(sum.Streams))
		if sum.FromPrevious {
			fmt.Fprintln(out, "  WARNING: manifest.json was unreadable; this is manifest.prev.json")
		}
		var total, usd float64
		for _, c := range sum.Cycles {
			total += float64(c.StoredBytes + c.ParityBytes)
			usd += c.MonthlyUSD
		}
		keep := ""
		if d, ok := cfg.ArchiveDatasetFor(dataset); ok {
			keep = fmt.Sprintf(" (keep_cycles %d)", d.KeepCycles)
		}
		fmt.Fprintf(out, "  storage: %d cycles%s, %s, %s/month at list prices\n", len(sum.Cycles), keep, humanBytes(int64(total)), dollars(usd))
		for _, c := range sum.Cycles {
			v := "not verified"
			if slices.Contains(sum.Verified, c.ID) {
				v = "verified"
			}
			par := ""
			if c.ParityBytes > 0 {
				par = fmt.Sprintf(" + %s parity (%.0f%%)", humanBytes(c.ParityBytes), 100*float64(c.ParityBytes)/float64(max(c.StoredBytes, 1)))
			}
			fmt.Fprintf(out, "  cycle %s (%s): %d streams, %s stored%s, %s, %s/month, deletable without early-deletion charge from %s\n",
				c.ID, c.Class, c.Streams, humanBytes(c.StoredBytes), par, v, dollars(c.MonthlyUSD), c.DeletableAt.Local().Format("2006-01-02"))
		}
		if verbose {
			for _, s := range sum.Streams {
				from := ""
				if s.Kind != "full" {
					from = "@" + s.From.Name + " -> "
				}
				par := ""
				if s.Parity != "" {
					par = fmt.Sprintf(" as part objects + %s parity %s", humanBytes(s.ParityBytes), s.Parity)
				}
				fmt.Fprintf(out, "    %s %s %s%s  %s plain, %s stored, %d parts%s  %s\n", s.Cycle, s.Kind, from, "@"+s.To.Name,
					humanBytes(s.PlainSize), humanBytes(s.StoredSize), s.Parts, par, s.Key)
			}
		}
	}
	id := workflows.ArchiveWorkflowID(dataset)
	var st workflows.ArchiveStatus
	v, err := cl.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
	if err == nil {
		err = v.Get(&st)
	}
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		fmt.Fprintf(out, "  last run: none started by 'zcloud archive run'\n")
	case err != nil:
		fmt.Fprintf(out, "  last run %s: %v\n", id, err)
	default:
		fmt.Fprintf(out, "  last run %s: %s", id, st.Phase)
		if st.Plan != nil {
			fmt.Fprintf(out, " (%s: %s)", st.Plan.Action, st.Plan.Reason)
		}
		fmt.Fprintln(out)
		if st.Error != "" {
			fmt.Fprintf(out, "  error: %s\n", st.Error)
		}
		if st.Phase == workflows.PhaseAwaitingApproval && st.Deletion != nil {
			fmt.Fprintf(out, "  deletion plan %s waits for approval until %s: %s\n", st.Deletion.ID, st.Deadline.Local().Format("2006-01-02 15:04:05"), st.Deletion.Verdict)
			for _, c := range st.Deletion.Delete {
				fmt.Fprintf(out, "    delete cycle %s: %d streams, %s\n", c.ID, c.Streams, humanBytes(c.StoredBytes))
			}
			fmt.Fprintf(out, "  zcloud archive approve %s [--reject]\n", dataset)
		}
	}
	for _, sid := range []string{workflows.ArchiveScheduleID(dataset), workflows.VerifyScheduleID(dataset)} {
		desc, err := cl.ScheduleClient().GetHandle(ctx, sid).Describe(ctx)
		if err != nil {
			fmt.Fprintf(out, "  schedule %s: none (zcloud archive schedule)\n", sid)
			continue
		}
		every := "?"
		if sp := desc.Schedule.Spec; sp != nil && len(sp.Intervals) > 0 {
			every = sp.Intervals[0].Every.String()
		}
		fmt.Fprintf(out, "  schedule %s: every %s, %d runs", sid, every, desc.Info.NumActions)
		if n := desc.Info.NextActionTimes; len(n) > 0 {
			fmt.Fprintf(out, ", next %s", n[0].Local().Format("2006-01-02 15:04:05"))
		}
		fmt.Fprintln(out)
	}
	_ = cfg
}

func archiveVerifyCmd(a *app) *cobra.Command {
	var identity, tier, scratch string
	var noWait, deep bool
	c := &cobra.Command{
		Use:   "verify DATASET",
		Short: "Restore drill: re-read every archived object and check its checksums; report what is missing or corrupt",
		Long: `Starts the ArchiveVerify workflow: every stream in the dataset's manifest is
checked with HEAD (exists, size, SHA-256), cold objects are restored first
(tier: archive.verify_tier, default Bulk, the cheapest; the wait is durable),
then every part is downloaded and its SHA-256, and the whole object's, compared
with the manifest. Nothing is decrypted, so no private key is needed. Every
missing or corrupt object is named; any finding fails the drill.
With --deep (and --identity naming the archive's private key in the worker's
key source, copied there for the drill only), the newest chain is also
decrypted and zfs-received into a scratch dataset on the worker's host
(--scratch, its name starting with zcloud-drill), its snapshots checked, and
the scratch destroyed; the report (chain, bytes, duration, result) is kept in
the store under <prefix>/<dataset>/drills/.
'zcloud archive schedule' runs drills every archive.verify_schedule.`,
		Example: "  zcloud archive verify tank/data\n  zcloud archive verify tank/data --deep --identity owner --scratch tank/zcloud-drill",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dss, cfg, err := a.archivedDatasets(args)
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
			in := verifyInput(cfg, dss[0].Dataset)
			in.Identity = identity
			if tier != "" {
				in.Tier = tier
			}
			if deep {
				if identity == "" || scratch == "" {
					return fmt.Errorf("--deep needs --identity (the archive's private key name) and --scratch (a dataset named zcloud-drill...)")
				}
				in.Deep, in.Scratch = true, scratch
			}
			run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{ID: workflows.VerifyWorkflowID(in.Dataset), TaskQueue: cfg.Temporal.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING},
				searchattr.Job{Kind: searchattr.KindDrill, Datasets: []string{in.Dataset}, Target: "archive"}), workflows.VerifyName, in)
			if err != nil {
				return fmt.Errorf("start verify of %s: %w", in.Dataset, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "verifying %s (workflow %s)\n", in.Dataset, run.GetID())
			if noWait {
				return nil
			}
			var st workflows.VerifyStatus
			if err := watch(ctx, cl, run, out, &st); err != nil {
				return err
			}
			fmt.Fprintf(out, "done: %d of %d streams re-read and checked (%s), no problems\n", st.Checked, st.Streams, humanBytes(st.Bytes))
			if d := st.Drill; d != nil {
				fmt.Fprintf(out, "deep drill: %s: chain %s, %s received into %s in %.1fs\n", d.Result, strings.Join(d.Chain, " "), humanBytes(d.Bytes), d.Scratch, d.Seconds)
			}
			return nil
		},
	}
	c.Flags().StringVar(&identity, "identity", "", "key name that reads the manifest (default: archive.host_identity)")
	c.Flags().StringVar(&tier, "tier", "", "retrieval tier for cold objects (default: archive.verify_tier)")
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	c.Flags().BoolVar(&deep, "deep", false, "also decrypt with --identity and zfs receive the newest chain into --scratch, check, destroy")
	c.Flags().StringVar(&scratch, "scratch", "", "deep drill: scratch dataset on the worker's host (name starts with zcloud-drill; destroyed)")
	return c
}

// archiveSchedules are the Schedules the config asks for.
func archiveSchedules(cfg *config.Config) []client.ScheduleOptions {
	var out []client.ScheduleOptions
	for _, d := range cfg.Archive.Datasets {
		out = append(out, client.ScheduleOptions{
			ID:   workflows.ArchiveScheduleID(d.Dataset),
			Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.Archive.Schedule}}},
			Action: scheduledJob(&client.ScheduleWorkflowAction{
				ID: workflows.ArchiveScheduleID(d.Dataset), Workflow: workflows.ArchiveTickName,
				Args: []any{archiveInput(cfg, d)}, TaskQueue: cfg.Temporal.TaskQueue, WorkflowRunTimeout: time.Hour,
			}, workflows.ArchiveJob(d.Dataset)),
			// Each tick starts archive/<dataset> and returns; while that
			// run goes on (e.g. waits for a deletion approval) ticks start
			// nothing.
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: max(cfg.Archive.Schedule, time.Minute),
			Note:          "managed by zcloud archive schedule",
		})
		if cfg.Archive.VerifySchedule > 0 {
			out = append(out, client.ScheduleOptions{
				ID:   workflows.VerifyScheduleID(d.Dataset),
				Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: cfg.Archive.VerifySchedule}}},
				Action: scheduledJob(&client.ScheduleWorkflowAction{
					ID: workflows.VerifyWorkflowID(d.Dataset), Workflow: workflows.VerifyName,
					Args: []any{verifyInput(cfg, d.Dataset)}, TaskQueue: cfg.Temporal.TaskQueue,
				}, searchattr.Job{Kind: searchattr.KindDrill, Datasets: []string{d.Dataset}, Target: "archive"}),
				Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
				CatchupWindow: time.Hour,
				Note:          "managed by zcloud archive schedule (restore drill)",
			})
		}
	}
	return out
}

func archiveScheduleCmd(a *app) *cobra.Command {
	return scheduleSyncCmd(a, &cobra.Command{
		Use:   "schedule",
		Short: "Create or update the archive (and restore drill) Schedules from the config; remove stale ones",
		Long: `Makes the Temporal Schedules match 'archive:' in the config: per dataset,
archive-schedule/<dataset> runs the Archive workflow every archive.schedule
(default 24h), and, when archive.verify_schedule is set,
archive-verify-schedule/<dataset> runs a restore drill that often. Both skip a
tick while the previous run still runs (e.g. waits for a deletion approval).
Archive Schedules of datasets no longer configured are deleted; their archives
stay in the store.`,
		Example: "  zcloud archive schedule --dry-run\n  zcloud archive schedule",
	}, applyArchiveSchedules)
}

func applyArchiveSchedules(ctx context.Context, cl client.Client, cfg *config.Config, out io.Writer, dryRun bool) error {
	var want []desiredSchedule
	for _, opts := range archiveSchedules(cfg) {
		want = append(want, desiredSchedule{opts, fmt.Sprintf("%s: every %s", opts.ID, opts.Spec.Intervals[0].Every)})
	}
	return syncSchedules(ctx, cl.ScheduleClient(), want,
		[]string{workflows.ArchiveScheduleID(""), workflows.VerifyScheduleID("")},
		"no longer configured; the archive stays in the store", out, dryRun)
}

func archiveApproveCmd(a *app) *cobra.Command {
	var reject bool
	var planID, by string
	c := &cobra.Command{
		Use:   "approve DATASET",
		Short: "Approve (or --reject) the deletion of old archive cycles waiting for approval",
		Long: `A rotation that would delete more than archive.max_delete_cycles cycles or
archive.max_delete_bytes stored bytes waits (up to archive.approval_timeout) in
the workflow archive/<dataset>. This prints the waiting plan and sends the
approve-archive-deletion Update naming its plan ID (--plan, default: the one
waiting now); the workflow refuses any other plan ID. --reject, or no answer
before the timeout, deletes nothing.`,
		Example: "  zcloud archive approve tank/data\n  zcloud archive approve tank/data --reject",
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
			id := workflows.ArchiveWorkflowID(ds.String())
			var st workflows.ArchiveStatus
			v, err := cl.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
			if err == nil {
				err = v.Get(&st)
			}
			if err != nil {
				return fmt.Errorf("archive %s: %w", id, err)
			}
			if st.Phase != workflows.PhaseAwaitingApproval || st.Deletion == nil {
				return fmt.Errorf("%s is not waiting for approval (phase: %s)", id, st.Phase)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "deletion plan %s: %s\n", st.Deletion.ID, st.Deletion.Verdict)
			for _, c := range st.Deletion.Delete {
				fmt.Fprintf(out, "  delete cycle %s (%s): %d streams, %s\n", c.ID, c.Class, c.Streams, humanBytes(c.StoredBytes))
			}
			if planID == "" {
				planID = st.Deletion.ID
			}
			return sendApproval(ctx, cl, out, id, workflows.ApproveDeletionUpdate, workflows.Approval{Approve: !reject, By: by, PlanID: planID})
		},
	}
	c.Flags().BoolVar(&reject, "reject", false, "reject: nothing is deleted")
	c.Flags().StringVar(&planID, "plan", "", "the plan ID you reviewed (default: the plan waiting now)")
	c.Flags().StringVar(&by, "by", defaultBy(), "who decides, recorded in the workflow history")
	return c
}

func archiveKeygenCmd(a *app) *cobra.Command {
	var outPath string
	c := &cobra.Command{
		Use:   "keygen NAME",
		Short: "Generate an age key pair: the private key goes to a file (mode 0600), the public key is printed",
		Long: `Generates an age X25519 identity. The private key is written to --out, or
to keys.dir/NAME when --out is not given (the worker's key source: use this for
archive.host_identity). The public key (age1...) is printed: put it under
archive.recipients.

For the archive recipients, run this on an offline machine and keep the
private key off the backup host: it is needed only to restore (copy it into
the restoring worker's key source then, and name it with --identity).`,
		Example: "  zcloud archive keygen archive-host\n  zcloud archive keygen owner --out /media/usb/zcloud-owner.key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := keys.ValidName(name); err != nil {
				// The name is how --identity and archive.host_identity find it.
				return err
			}
			if outPath == "" {
				cfg, err := a.config()
				if err != nil {
					return err
				}
				if cfg.Keys.Dir == "" {
					return fmt.Errorf("give --out, or set keys.dir in %s", a.cfgPath)
				}
				outPath = filepath.Join(cfg.Keys.Dir, name)
			}
			id, err := age.GenerateX25519Identity()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("%w (refusing to overwrite an existing key)", err)
			}
			fmt.Fprintf(f, "# created: %s\n# public key: %s\n%s\n", time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "private key written to %s\n", outPath)
			fmt.Fprintln(cmd.OutOrStdout(), id.Recipient().String())
			return nil
		},
	}
	c.Flags().StringVar(&outPath, "out", "", "file for the private key (default: keys.dir/NAME)")
	return c
}

// dollars prints an amount in USD; below a cent it says so rather than $0.00.
func dollars(usd float64) string {
	if usd > 0 && usd < 0.01 {
		return "<$0.01"
	}
	return fmt.Sprintf("$%.2f", usd)
}
