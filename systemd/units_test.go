// Package systemd holds zcloud's systemd units (docs/deploy.md); this test
// checks them with systemd-analyze and runs the Temporal unit's command line.
package systemd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"zcloud/config"
	"zcloud/internal/tclient"
	"zcloud/internal/testenv"
)

// unit is a unit file's [Service] (and other) settings; a key may repeat.
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sc := bufio.NewScanner(f)
	line := ""
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(l, `\`) {
			line += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		line += l
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			u[strings.TrimSpace(k)] = append(u[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
		line = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// systemd-analyze verify finds no problem in either unit (unknown keys,
// bad values, a missing binary: the binaries are replaced by ones present
// here).
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd; scripts/setup.sh installs it)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for _, name := range []string{"zcloud-worker.service", "zcloud-temporal.service"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("/usr/local/bin/zcloud ", self+" ", "/usr/local/bin/temporal ", self+" ").Replace(string(b))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The worker's hardening must not give it a mount namespace (zfs mounts
// would be invisible to the host) or a device policy (/dev/zfs closed).
func TestWorkerUnitLeavesZFSWorking(t *testing.T) {
	u := readUnit(t, "zcloud-worker.service")
	for _, k := range []string{"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ReadOnlyPaths",
		"ReadWritePaths", "InaccessiblePaths", "TemporaryFileSystem", "BindPaths", "ProtectKernelTunables",
		"ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectProc",
		"DeviceAllow", "DevicePolicy", "PrivateMounts", "MountFlags", "DynamicUser", "User", "CapabilityBoundingSet",
		"PrivateUsers", "RootDirectory", "RootImage"} {
		if v, ok := u[k]; ok {
			t.Errorf("%s=%v: would hide zfs mounts from the host or close /dev/zfs", k, v)
		}
	}
	if got := strings.Join(u["ExecStart"], " "); got != "/usr/local/bin/zcloud worker" {
		t.Errorf("ExecStart=%s", got)
	}
	if got := strings.Join(u["SystemCallFilter"], " "); strings.Contains(got, "@module") || strings.Contains(got, "@mount") {
		t.Errorf("SystemCallFilter=%s takes away what zfs needs", got)
	}
	if u["NoNewPrivileges"] == nil || u["StateDirectory"][0] != "zcloud" {
		t.Errorf("hardening or state directory missing: %v", u)
	}
}

// The Temporal unit's command line, run as written (only its ports and
// database path moved to this test's): it listens on loopback only, and a
// workflow started before a restart is still there after it, because its
// state lives in the SQLite file.
func TestTemporalUnitPersistsAcrossRestart(t *testing.T) {
	u := readUnit(t, "zcloud-temporal.service")
	argv := strings.Fields(strings.Join(u["ExecStart"], " "))
	if argv[0] != "/usr/local/bin/temporal" {
		t.Fatalf("ExecStart=%v", argv)
	}
	state := "/var/lib/" + u["StateDirectory"][0] + "/"
	for i, a := range argv {
		switch a {
		case "--ip", "--ui-ip":
			if argv[i+1] != "127.0.0.1" {
				t.Errorf("%s %s: Temporal has no authentication; bind it to loopback only", a, argv[i+1])
			}
		case "--db-filename":
			if !strings.HasPrefix(argv[i+1], state) {
				t.Errorf("--db-filename %s is outside the unit's StateDirectory %s", argv[i+1], state)
			}
		}
	}
	bin, err := testenv.TemporalBin()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := testenv.FreePort()
	args := append([]string(nil), argv[1:]...)
	for i := range args {
		switch args[i] {
		case "--db-filename":
			args[i+1] = filepath.Join(dir, "temporal.db")
		case "--port":
			args[i+1] = fmt.Sprint(port)
		case "--http-port", "--metrics-port", "--ui-port":
			args[i+1] = fmt.Sprint(testenv.FreePort())
		}
	}
	cfg := config.Temporal{Address: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "default"}
	start := func() (client.Client, func()) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		log, err := os.Create(filepath.Join(dir, "temporal.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			log.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cl, err := tclient.DialWait(ctx, cfg, zap.NewNop(), tclient.Backoff{First: 50 * time.Millisecond, Max: time.Second})
		if err != nil {
			stop()
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("temporal as the unit runs it: %v\n%s", err, b)
		}
		return cl, stop
	}
	cl, stop := start()
	ctx := context.Background()
	// No worker polls this queue: the workflow stays running, in the file.
	run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "persisted", TaskQueue: "nobody"}, "Nothing")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	cl.Close()
	stop()

	cl, stop = start()
	defer stop()
	defer cl.Close()
	desc, err := cl.DescribeWorkflowExecution(ctx, "persisted", run.GetRunID())
	if err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetStatus().String(); got != "Running" {
		t.Errorf("after a restart the workflow is %s", got)
	}
}
