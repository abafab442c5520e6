package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/searchattr"
	"zcloud/staging"
	"zcloud/workflows"
)

func stagingCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "staging",
		Short: "File-level encrypted staging: each file age-encrypted into a staging dataset, kept current with zfs diff",
		Long: `A staging job (config 'staging:') keeps a copy of a dataset's newest snapshot in
which every file is encrypted, one by one, to age public keys; the staging
dataset then replicates and archives like any other. Restoring or verifying it
needs the private key, which is given at run time and never stored.
See docs/staging.md.`,
	}
	c.AddCommand(stagingRunCmd(a), stagingStatusCmd(a), stagingRestoreCmd(a), stagingVerifyCmd(), stagingScheduleCmd(a))
	return c
}

func stagingInput(s config.Staging) workflows.StagingInput {
	return workflows.StagingInput{Source: s.Source, Dataset: s.Dataset}
}

// stagingJobs picks the configured jobs named by args (all without args).
func (a *app) stagingJobs(args []string) ([]config.Staging, *config.Config, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	if len(args) == 0 {
		if len(cfg.Staging) == 0 {
			return nil, nil, errors.New("no staging: entries in the config")
		}
		return cfg.Staging, cfg, nil
	}
	var out []config.Staging
	for _, src := range args {
		s, ok := cfg.StagingFor(src)
		if !ok {
			return nil, nil, fmt.Errorf("%s has no staging: entry in the config", src)
		}
		out = append(out, s)
	}
	return out, cfg, nil
}

func stagingRunCmd(a *app) *cobra.Command {
	var noWait, local bool
	c := &cobra.Command{
		Use:   "run [SOURCE...]",
		Short: "Stage the newest snapshot now (full the first time, then the zfs diff)",
		Long: `Starts the Staging workflow (ID staging/<source>) for each SOURCE (default: every
staging: entry) and prints its progress:

  plan      full when the staging copy is empty (or its base snapshot is gone),
            else incremental from the staged snapshot to the newest; nothing
            when the newest is staged
  stage     every file (full) or what 'zfs diff' lists (incremental) is
            age-encrypted into the staging dataset; a crash resumes
  snapshot  the staging dataset gets a snapshot named like the source's
  hold      the staged source snapshot is held (tag zcloud-staging): the next
            diff's base cannot be pruned

--local runs the same steps in this process, without Temporal (on the host
that owns the pool).`,
		Example: "  zcloud staging run\n  zcloud staging run tank/data --local",
		RunE: func(cmd *cobra.Command, args []string) error {
			jobs, cfg, err := a.stagingJobs(args)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			if local {
				acts := activities.New(cfg, a.logger())
				for _, j := range jobs {
					plan, rep, err := activities.RunStagingHere(ctx, acts, j.Source, j.Dataset)
					st := workflows.StagingStatus{Phase: workflows.PhaseDone, Source: j.Source, Plan: &plan, Report: rep}
					if err != nil {
						st.Phase, st.Error = workflows.PhaseFailed, err.Error()
					}
					printStagingResult(out, st)
					if err != nil {
						return err
					}
				}
				return nil
			}
			cl, _, err := a.client()
			if err != nil {
				return err
			}
			defer cl.Close()
			for _, j := range jobs {
				run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{
					ID: workflows.StagingWorkflowID(j.Source), TaskQueue: cfg.Temporal.TaskQueue,
					WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				}, searchattr.Job{Kind: searchattr.KindStaging, Datasets: []string{j.Source}}), workflows.StagingName, stagingInput(j))
				if err != nil {
					return fmt.Errorf("start staging of %s: %w", j.Source, err)
				}
				fmt.Fprintf(out, "staging %s into %s (workflow %s, run %s)\n", j.Source, j.Dataset, run.GetID(), run.GetRunID())
				if noWait {
					continue
				}
				var st workflows.StagingStatus
				if err := watch(ctx, cl, run, out, &st); err != nil {
					return err
				}
				printStagingResult(out, st)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	c.Flags().BoolVar(&local, "local", false, "run the steps in this process, without Temporal")
	return c
}

func printStagingResult(out io.Writer, st workflows.StagingStatus) {
	if st.Plan != nil {
		fmt.Fprintf(out, "%s: %s", st.Source, st.Plan.Action)
		if st.Plan.From != "" && st.Plan.Action != activities.StagingSkip {
			fmt.Fprintf(out, " from @%s", st.Plan.From)
		}
		fmt.Fprintf(out, " to @%s", st.Plan.To)
		if st.Plan.Note != "" {
			fmt.Fprintf(out, " (%s)", st.Plan.Note)
		}
		fmt.Fprintln(out)
	}
	if r := st.Report; r != nil {
		fmt.Fprintf(out, "  %d files (%d bytes), %d symlinks, %d directories created, %d removed, %d renamed\n",
			r.Files, r.Bytes, r.Symlinks, r.Dirs, r.Removed, r.Moved)
		for _, p := range r.Skipped {
			fmt.Fprintf(out, "  skipped %q: %s\n", p.Path, p.Reason)
		}
		for _, p := range r.Failed {
			fmt.Fprintf(out, "  FAILED %q: %s\n", p.Path, p.Reason)
		}
	}
	if st.Error != "" {
		fmt.Fprintf(out, "  error: %s\n", st.Error)
	}
	fmt.Fprintf(out, "  phase: %s\n", st.Phase)
}

func stagingStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status [SOURCE...]",
		Short: "The last (or running) staging run of each job",
		RunE: func(cmd *cobra.Command, args []string) error {
			jobs, _, err := a.stagingJobs(args)
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
			for _, j := range jobs {
				id := workflows.StagingWorkflowID(j.Source)
				v, err := cl.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
				var nf *serviceerror.NotFound
				if errors.As(err, &nf) {
					fmt.Fprintf(out, "%s: never staged (no workflow %s)\n", j.Source, id)
					continue
				}
				if err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				var st workflows.StagingStatus
				if err := v.Get(&st); err != nil {
					return err
				}
				printStagingResult(out, st)
			}
			return nil
		},
	}
}

// readIdentities reads age private keys from a file given at run time.
func readIdentities(path string) ([]age.Identity, error) {
	if path == "" {
		return nil, errors.New("give the private key file: --identity FILE (it is read, never stored)")
	}
	var f io.Reader = os.Stdin // "-": piped in, never on disk
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		f = file
	}
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ids, nil
}

func stagingRestoreCmd(a *app) *cobra.Command {
	var identity, path, target string
	c := &cobra.Command{
		Use:   "restore STAGING_DIR DEST",
		Short: "Decrypt one file, a subtree, or everything from a staging copy",
		Long: `Decrypts from STAGING_DIR (a mounted staging dataset, a replica of it, or one
received from the archive) into DEST. --path picks one file or directory
(relative to the staging copy's root, the plain path also when names are
encrypted); without it everything is restored.
With --target NAME, STAGING_DIR is a path on that configured target (a
replica's mountpoint), reached over SSH with the target's ssh: settings; the
encrypted files are streamed here (tar over SSH) and decrypted here, so the
private key never reaches the target.
The private key file (--identity) is read at run time and never stored.
Modes and modification times are restored, holes come back as holes, symlinks
as symlinks; hard links come back as separate files.`,
		Example: "  zcloud staging restore /tank/staging/data /restore --identity /media/usb/owner.key\n  zcloud staging restore /tank/staging/data /tmp --path 'docs/report.pdf' --identity owner.key\n  zcloud staging restore --target backup /backup/staging/data /restore --identity -",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := readIdentities(identity)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			sub := filepath.Clean("/" + path)[1:]
			var rep staging.RestoreReport
			var snap string
			if target != "" {
				cfg, err := a.config()
				if err != nil {
					return err
				}
				r, err := targetRunner(cfg, target, a.logger())
				if err != nil {
					return err
				}
				defer r.Close()
				if rep, snap, err = restoreRemote(ctx, r, args[0], sub, args[1], ids); err != nil {
					return err
				}
			} else {
				st, err := staging.ReadState(args[0])
				if err != nil {
					return err
				}
				if rep, err = staging.Restore(ctx, args[0], sub, args[1], ids); err != nil {
					return err
				}
				snap = st.Snapshot
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %d files (%d bytes), %d symlinks, %d directories from the staged snapshot %q into %s\n",
				rep.Files, rep.Bytes, rep.Symlinks, rep.Dirs, snap, args[1])
			return nil
		},
	}
	c.Flags().StringVar(&identity, "identity", "", "file holding the age private key, or - for stdin (read now, never stored)")
	c.Flags().StringVar(&path, "path", "", "restore only this file or directory (relative to the staging root)")
	c.Flags().StringVar(&target, "target", "", "read the staging copy from this configured target over SSH (STAGING_DIR is a path there)")
	return c
}

func stagingVerifyCmd() *cobra.Command {
	var identity, seed string
	var sample float64
	c := &cobra.Command{
		Use:   "verify STAGING_DIR SOURCE",
		Short: "Prove with the private key that the staging copy decrypts to the source snapshot",
		Long: `Compares the staging copy with the source snapshot it says it holds: every name
and type, and for every file (or a --sample fraction of them) the decrypted
content's SHA-256, its mode and symlink target. SOURCE is the snapshot's
directory, or the source dataset's mountpoint (then .zfs/snapshot/<staged
snapshot> under it is used). Exits non-zero on any difference.`,
		Example: "  zcloud staging verify /tank/staging/data /tank/data --identity owner.key\n  zcloud staging verify /tank/staging/data /tank/data --sample 0.05 --identity owner.key",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := readIdentities(identity)
			if err != nil {
				return err
			}
			if sample < 0 || sample > 1 {
				return fmt.Errorf("--sample must be between 0 and 1, not %v", sample)
			}
			st, err := staging.ReadState(args[0])
			if err != nil {
				return err
			}
			if st.Snapshot == "" {
				return fmt.Errorf("%s holds no completely staged snapshot", args[0])
			}
			src := args[1]
			if d := filepath.Join(src, ".zfs", "snapshot", st.Snapshot); isDir(d) {
				src = d
			}
			ctx, cancel := signalContext()
			defer cancel()
			rep, err := staging.Verify(ctx, args[0], src, ids, staging.VerifyOptions{Sample: sample, Seed: seed})
			out := cmd.OutOrStdout()
			for _, m := range rep.Mismatches {
				fmt.Fprintf(out, "DIFFERS %q: %s\n", m.Path, m.Reason)
			}
			fmt.Fprintf(out, "@%s: %d entries listed, %d files decrypted (%d bytes) against %s\n", st.Snapshot, rep.Entries, rep.Decrypted, rep.Bytes, src)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, "ok: the staging copy decrypts to the source")
			return nil
		},
	}
	c.Flags().StringVar(&identity, "identity", "", "file holding the age private key, or - for stdin (read now, never stored)")
	c.Flags().Float64Var(&sample, "sample", 0, "fraction of files to decrypt (0 or 1: all)")
	c.Flags().StringVar(&seed, "seed", "", "varies which files a sample picks")
	return c
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func stagingScheduleCmd(a *app) *cobra.Command {
	return scheduleSyncCmd(a, &cobra.Command{
		Use:   "schedule",
		Short: "Create or update a Schedule per staging job with a schedule: interval; remove stale ones",
	}, applyStagingSchedules)
}

func applyStagingSchedules(ctx context.Context, cl client.Client, cfg *config.Config, out io.Writer, dryRun bool) error {
	var want []desiredSchedule
	for _, s := range cfg.Staging {
		if s.Schedule <= 0 {
			continue
		}
		id := workflows.StagingScheduleID(s.Source)
		want = append(want, desiredSchedule{client.ScheduleOptions{
			ID:   id,
			Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: s.Schedule}}},
			Action: scheduledJob(&client.ScheduleWorkflowAction{
				ID: workflows.StagingWorkflowID(s.Source), Workflow: workflows.StagingName,
				Args: []any{stagingInput(s)}, TaskQueue: cfg.Temporal.TaskQueue,
			}, searchattr.Job{Kind: searchattr.KindStaging, Datasets: []string{s.Source}}),
			Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			CatchupWindow: max(s.Schedule, 60e9),
			Note:          "managed by zcloud staging schedule",
		}, fmt.Sprintf("%s: every %s", id, s.Schedule)})
	}
	return syncSchedules(ctx, cl.ScheduleClient(), want, []string{workflows.StagingScheduleID("")},
		"no longer configured; the staging copy stays", out, dryRun)
}
