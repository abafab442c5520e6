// Command demo shows zcloud's main job end to end on one machine: a demo
// pool with data is replicated to a second pool over SSH on localhost by the
// Replicate workflow on a real Temporal server, first in full, then
// incrementally after a change. Run it with scripts/demo.sh (as root).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"zcloud/cli"
	"zcloud/config"
	"zcloud/internal/testenv"
	"zcloud/workerapp"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"zcloud/activities"
	"zcloud/logging"
)

// demoTB lets the test-environment helpers run outside `go test`.
type demoTB struct {
	dir      string
	cleanups []func()
}

func (d *demoTB) Helper()                   {}
func (d *demoTB) Logf(f string, a ...any)   { fmt.Printf("  "+f+"\n", a...) }
func (d *demoTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (d *demoTB) Cleanup(f func())          { d.cleanups = append(d.cleanups, f) }
func (d *demoTB) TempDir() string           { p, _ := os.MkdirTemp(d.dir, "t"); return p }
func (d *demoTB) close() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
}

func main() {
	hold := flag.Duration("hold", 0, "keep Temporal and its Web UI up this long after the demo (e.g. 10m) to look around")
	flag.Parse()
	dir, err := os.MkdirTemp("", "zcloud-demo-")
	if err != nil {
		fail(err)
	}
	tb := &demoTB{dir: dir}
	code := 0
	func() {
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintln(os.Stderr, "demo failed:", r)
				code = 1
			}
		}()
		if err := run(tb, *hold); err != nil {
			fmt.Fprintln(os.Stderr, "demo failed:", err)
			code = 1
		}
	}()
	tb.close()
	testenv.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}

func step(format string, a ...any) { fmt.Printf("\n==> "+format+"\n", a...) }

func run(tb *demoTB, hold time.Duration) error {
	step("Starting a Temporal dev server with its Web UI")
	tmp, err := testenv.StartTemporal(filepath.Join(tb.dir, "temporal.log"), true)
	if err != nil {
		return err
	}
	tb.Cleanup(tmp.Stop)
	fmt.Printf("  Temporal at %s, Web UI at %s\n", tmp.HostPort, tmp.UIAddr)

	step("Starting sshd on 127.0.0.1 (the 'backup' target) with a fresh pinned host key")
	sshd := testenv.NewSSHD(tb)
	fmt.Printf("  sshd on port %d, host key %s\n", sshd.Port, sshd.HostKey[:40]+"...")

	step("Creating two zfs-fuse pools on sparse files: source and backup")
	src := testenv.NewPool(tb, "demosrc", 1, 256, "")
	dst := testenv.NewPool(tb, "demobak", 1, 256, "")
	data := src.Pool.String() + "/data"
	testenv.MustZFS(tb, "zfs", "create", data)
	writeFiles(filepath.Join("/", data), 20, 512<<10)
	fmt.Printf("  %s holds %s\n", data, duOf("/"+data))

	receiver := os.Getenv("ZCLOUD_BIN") // built by scripts/demo.sh
	if receiver == "" {
		return fmt.Errorf("ZCLOUD_BIN is not set: run the demo with scripts/demo.sh")
	}
	cfgYAML := fmt.Sprintf(`temporal: {address: %q, task_queue: zcloud-demo}
log: {level: warn}
receiver_binary: %q
targets:
  backup:
    transport: parallel
    streams: 4
    receiver_path: %q
    ssh: {host: 127.0.0.1, port: %d, user: %s, identity_file: %q, host_key: %q}
replications:
  - {source: %s, target: backup, target_dataset: %s/data}
`, tmp.HostPort, receiver, filepath.Join(tb.dir, "target", "zcloud"), sshd.Port, sshd.User, sshd.ClientKeyPath, sshd.HostKey, data, dst.Pool.String())
	cfgPath := filepath.Join(tb.dir, "zcloud.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	fmt.Printf("  config written to %s:\n%s", cfgPath, indent(cfgYAML))

	step("Starting the zcloud worker")
	log, _ := logging.New("warn", "console")
	cl, err := client.Dial(client.Options{HostPort: tmp.HostPort, Logger: logging.NewTemporal(log)})
	if err != nil {
		return err
	}
	defer cl.Close()
	w := workerapp.New(cl, cfg, activities.New(cfg, log.With(zap.String("component", "worker"))))
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()

	step("zcloud replicate  (first run: full stream over the encrypted parallel transport;\n    the receiver binary is installed on the target over SSH and checked by SHA-256)")
	if err := zcloud(cfgPath, "replicate"); err != nil {
		return err
	}
	step("Changing data on the source, then replicating again (incremental)")
	writeFiles(filepath.Join("/", data, "more"), 5, 256<<10)
	time.Sleep(1100 * time.Millisecond)
	if err := zcloud(cfgPath, "replicate"); err != nil {
		return err
	}

	step("Comparing the source and the backup")
	a, b := sums("/"+data), sums("/"+dst.Pool.String()+"/data")
	if a != b {
		return fmt.Errorf("backup differs from source")
	}
	fmt.Printf("  %d files, byte-identical on the backup (SHA-256 compared)\n", strings.Count(a, "\n"))
	fmt.Printf("  snapshots on the backup:\n%s", indent(testenv.MustZFS(tb, "zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", dst.Pool.String())))

	step("Done. The workflow histories are in the Temporal Web UI: %s/namespaces/default/workflows", tmp.UIAddr)
	if hold > 0 {
		fmt.Printf("  keeping everything up for %s (Ctrl-C to stop)\n", hold)
		ctx, cancel := context.WithTimeout(context.Background(), hold)
		defer cancel()
		sig, stop := signalCtx(ctx)
		defer stop()
		<-sig.Done()
	}
	return nil
}

func zcloud(cfgPath string, args ...string) error {
	root := cli.Root()
	root.SetArgs(append([]string{"--config", cfgPath}, args...))
	var out bytes.Buffer
	root.SetOut(&out)
	err := root.Execute()
	fmt.Print(indent(out.String()))
	return err
}

func writeFiles(dir string, n, size int) {
	for i := 0; i < n; i++ {
		d := filepath.Join(dir, fmt.Sprintf("dir%d", i%4))
		os.MkdirAll(d, 0o755)
		b := make([]byte, size)
		rand.Read(b)
		os.WriteFile(filepath.Join(d, fmt.Sprintf("file%02d.bin", i)), b, 0o644)
	}
}
