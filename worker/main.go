// Command zcloud-worker is the Temporal worker: it registers zcloud's
// workflows and activities and runs until interrupted.
package main

import (
	"flag"
	"fmt"
	"os"

	"zcloud/workerapp"
)

func main() {
	cfgPath := flag.String("config", envOr("ZCLOUD_CONFIG", "/etc/zcloud/zcloud.yaml"), "configuration file")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: zcloud-worker [-config FILE]\n\nRuns the zcloud Temporal worker (workflows + activities) until SIGINT/SIGTERM.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := workerapp.Run(*cfgPath); err != nil {
		fmt.Fprintln(os.Stderr, "zcloud-worker:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
