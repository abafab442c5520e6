// Command zcloud is the CLI: it starts workflows, shows their progress,
// sends approvals, and hosts `zcloud transfer recv` on targets.
package main

import (
	"fmt"
	"os"

	"zcloud/cli"
)

func main() {
	if err := cli.Root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "zcloud:", err)
		os.Exit(1)
	}
}
