package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"zcloud/config"
	"zcloud/searchattr"
	"zcloud/workflows"
)

func replicateCmd(a *app) *cobra.Command {
	var to string
	var raw, plaintext, noWait bool
	c := &cobra.Command{
		Use:   "replicate SOURCE --to TARGET:DATASET",
		Short: "Replicate a dataset to a target over SSH (full first, incremental after)",
		Long: `Starts the Replicate workflow: snapshot SOURCE, then send to DATASET on the
configured TARGET whatever it lacks: a full stream the first time, an
incremental (-I) from the newest common snapshot after, or a resume from the
target's receive_resume_token. Progress is printed until the workflow ends
(Ctrl-C stops watching; the workflow keeps running).

Without arguments, replicates every entry under 'replications:' in the config;
SOURCE --to TARGET:DATASET picks one of them (the worker refuses any
replication its config does not list).`,
		Example: "  zcloud replicate tank/data --to backup1:backup/data",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			var inputs []workflows.ReplicateInput
			if len(args) == 1 {
				in, err := parseReplicateArgs(args[0], to, raw)
				if err != nil {
					return err
				}
				if raw && plaintext {
					return fmt.Errorf("--allow-plaintext-on-target contradicts --raw")
				}
				in.AllowPlaintext = plaintext
				if _, ok := cfg.Targets[in.Target]; !ok {
					return fmt.Errorf("no target named %q in %s (known: %s)", in.Target, a.cfgPath, strings.Join(cfg.TargetNames(), ", "))
				}
				// The worker sends only what the config lists (docs/security.md).
				i := slices.IndexFunc(cfg.Replications, func(r config.Replication) bool {
					return r.Source == in.Source && r.Target == in.Target && r.TargetDataset == in.TargetDataset
				})
				if i < 0 {
					return fmt.Errorf("%s -> %s:%s is not under 'replications:' in %s: the worker replicates only what its config lists", in.Source, in.Target, in.TargetDataset, a.cfgPath)
				}
				if raw && !cfg.Replications[i].Raw {
					return fmt.Errorf("--raw: the replication of %s to %s:%s in %s is not raw", in.Source, in.Target, in.TargetDataset, a.cfgPath)
				}
				if plaintext && !cfg.Replications[i].AllowPlaintextOnTarget {
					return fmt.Errorf("--allow-plaintext-on-target: set allow_plaintext_on_target on the replication of %s to %s:%s in %s (the worker sends plaintext only where its config allows it)", in.Source, in.Target, in.TargetDataset, a.cfgPath)
				}
				in.Raw = cfg.Replications[i].Raw
				inputs = append(inputs, in)
			} else {
				if to != "" {
					return fmt.Errorf("--to needs a SOURCE argument")
				}
				for _, r := range cfg.Replications {
					inputs = append(inputs, workflows.ReplicateInput{Source: r.Source, Target: r.Target, TargetDataset: r.TargetDataset, Raw: r.Raw,
						AllowPlaintext: r.AllowPlaintextOnTarget})
				}
				if len(inputs) == 0 {
					return fmt.Errorf("nothing to replicate: give SOURCE --to TARGET:DATASET or list replications in %s", a.cfgPath)
				}
			}
			cl, _, err := a.client() // arguments checked first: no connection for a typo
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			for _, in := range inputs {
				id := workflows.ReplicateWorkflowID(in.Source, in.Target, in.TargetDataset)
				run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{
					ID: id, TaskQueue: cfg.Temporal.TaskQueue,
					WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				}, searchattr.Job{Kind: searchattr.KindReplicate, Datasets: []string{in.Source}, Target: in.Target}), workflows.ReplicateName, in)
				if err != nil {
					return fmt.Errorf("start replication of %s: %w", in.Source, err)
				}
				fmt.Fprintf(out, "replicating %s to %s:%s (workflow %s, run %s)\n", in.Source, in.Target, in.TargetDataset, run.GetID(), run.GetRunID())
				if noWait {
					continue
				}
				var res workflows.ReplicateResult
				if err := watch(ctx, cl, run, out, &res); err != nil {
					return err
				}
				s := res.Send
				kind := "incremental from " + s.From
				switch {
				case s.AlreadyDone:
					kind = "nothing to send (target already up to date)"
				case s.Resumed:
					kind = "resumed partial receive"
				case s.Full:
					kind = "full"
				}
				mode := ""
				if s.Mode != "" {
					mode = ", " + s.Mode
				}
				fmt.Fprintf(out, "done: %s -> %s:%s, %s%s, %s in %.1fs\n", res.Snapshot, in.Target, in.TargetDataset, kind, mode, humanBytes(s.Bytes), res.Seconds)
			}
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "TARGET:DATASET (TARGET is a name under 'targets:' in the config)")
	c.Flags().BoolVar(&raw, "raw", false, "raw send (zfs send -w) even of an unencrypted dataset (natively encrypted ones are sent raw anyway)")
	c.Flags().BoolVar(&plaintext, "allow-plaintext-on-target", false, "send a natively encrypted dataset decrypted: the target stores plaintext")
	c.Flags().BoolVar(&noWait, "no-wait", false, "start the workflow and return")
	return c
}

// parseReplicateArgs validates the user's names once, here at the edge,
// including that the snapshot names zcloud appends still fit.
func parseReplicateArgs(source, to string, raw bool) (workflows.ReplicateInput, error) {
	if err := config.CheckSnapshotFits(source); err != nil {
		return workflows.ReplicateInput{}, err
	}
	target, ds, ok := strings.Cut(to, ":")
	if !ok || target == "" || ds == "" {
		return workflows.ReplicateInput{}, fmt.Errorf("--to must be TARGET:DATASET, got %q", to)
	}
	if err := config.ValidTargetName(target); err != nil {
		return workflows.ReplicateInput{}, fmt.Errorf("--to: %w", err)
	}
	if err := config.CheckSnapshotFits(ds); err != nil {
		return workflows.ReplicateInput{}, fmt.Errorf("--to: %w", err)
	}
	return workflows.ReplicateInput{Source: source, Target: target, TargetDataset: ds, Raw: raw}, nil
}
