// Package cli is the `zcloud` command tree. Each command is a thin layer:
// parse and validate arguments once, start or query a workflow, print.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"zcloud/config"
	"zcloud/internal/tclient"
	"zcloud/logging"
)

// app holds what every command needs, loaded lazily.
type app struct {
	cfgPath string
	cfg     *config.Config
	log     *zap.Logger
}

func (a *app) config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	c, err := config.Load(a.cfgPath)
	if err != nil {
		return nil, err
	}
	a.cfg = c
	return c, nil
}

func (a *app) logger() *zap.Logger {
	if a.log == nil {
		level := "warn"
		if a.cfg != nil {
			level = a.cfg.Log.Level
			if level == "info" || level == "debug" {
				level = "warn" // the CLI prints its own progress
			}
		}
		l, err := logging.New(level, "console")
		if err != nil {
			l = zap.NewNop()
		}
		a.log = l
	}
	return a.log
}

func (a *app) client() (client.Client, *config.Config, error) {
	return a.checkedClient(func(*config.Config) error { return nil })
}

// checkedClient loads the config, runs check (the command's arguments
// against it), and only then connects: a typo is reported at once, not
// after a dial to a Temporal server that may be down.
func (a *app) checkedClient(check func(*config.Config) error) (client.Client, *config.Config, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	if err := check(cfg); err != nil {
		return nil, nil, err
	}
	cl, err := tclient.Dial(cfg.Temporal, a.logger())
	return cl, cfg, err
}

// signalContext is cancelled by Ctrl-C.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// Root builds the command tree.
func Root() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:   "zcloud",
		Short: "Keep ZFS datasets safe off site in AWS, driven by Temporal workflows",
		Long: `zcloud replicates ZFS datasets to a pool on EC2 (or any SSH host), archives
them to S3 Glacier storage classes, and restores them, with every long step
run as a durable Temporal workflow.

Configuration is read from --config (default $ZCLOUD_CONFIG or
/etc/zcloud/zcloud.yaml); 'zcloud config example' prints an annotated one.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("ZCLOUD_CONFIG")
	if def == "" {
		def = "/etc/zcloud/zcloud.yaml"
	}
	root.PersistentFlags().StringVar(&a.cfgPath, "config", def, "configuration file")
	root.AddCommand(configCmd(a), workerCmd(a), replicateCmd(a), statusCmd(a), cancelCmd(a), transferCmd())
	root.AddCommand(policyCmd(a))
	root.AddCommand(poolCmd(a))
	root.AddCommand(archiveCmd(a), restoreCmd(a))
	root.AddCommand(sessionCmd(a))
	root.AddCommand(stagingCmd(a))
	root.Version = version()
	refuseUnknownSubcommands(root)
	return root
}

// Version is set at build time (-ldflags "-X zcloud/cli.Version=v1.2.3");
// otherwise the module version from the build info is shown.
var Version = ""

func version() string {
	v := Version
	bi, ok := debug.ReadBuildInfo()
	if v == "" && ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v + " " + runtime.Version()
}

// refuseUnknownSubcommands makes `zcloud pool bogus` an error (exit 1):
// cobra checks unknown names only under the root, and a group command
// without a Run of its own printed its help and exited 0.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q (see %s --help)", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
}

func configCmd(a *app) *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Print or check the configuration"}
	c.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print an annotated example configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.Example)
			return err
		},
	}, &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate the configuration file (FILE, else --config) and report every problem",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				a.cfgPath = args[0]
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d targets, %d replications, %d policies)\n", a.cfgPath, len(cfg.Targets), len(cfg.Replications), len(cfg.Policies))
			return nil
		},
	})
	return c
}
