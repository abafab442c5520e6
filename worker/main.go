// Command zcloud-worker is the Temporal worker. It is the zcloud CLI with
// "worker" as its default command, so the same binary also serves as the
// transfer receiver copied to targets.
package main

import (
	"fmt"
	"os"

	"zcloud/cli"
)

func main() {
	root := cli.Root()
	if len(os.Args) < 2 || os.Args[1] == "-config" || os.Args[1] == "--config" {
		root.SetArgs(append([]string{"worker"}, os.Args[1:]...))
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "zcloud-worker:", err)
		os.Exit(1)
	}
}
