package vmtests

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"zcloud/bootstrap"
	"zcloud/zfsexec"
)

// runBootstrap installs the script for o where cloud-init would, runs it
// without the package installation (as root, like cloud-init) and returns
// its error, stderr and the status file it left.
func (h *host) runBootstrap(t *testing.T, o bootstrap.Options) (error, string, string) {
	t.Helper()
	script, err := bootstrap.Script(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 2*time.Minute)
	if _, err := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{"sh", "-c", `mkdir -p "$(dirname "$1")" && cat >"$1" && chmod 0755 "$1"`, "sh", bootstrap.InstallPath},
		Stdin: strings.NewReader(script)}); err != nil {
		t.Fatal(err)
	}
	res, runErr := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{"env", bootstrap.SkipInstallEnv + "=1", bootstrap.InstallPath}})
	stderr := res.Stderr
	var ee *zfsexec.ExitError
	if errors.As(runErr, &ee) {
		stderr = ee.Stderr
	}
	status, _ := h.shErr(`cat "$1"`, bootstrap.StatusPath)
	return runErr, stderr, strings.TrimSpace(status)
}

// The generated bootstrap, run in the OpenZFS 2.3 VM (all but the package
// installation): it caps the ARC for the guest's memory, now and for the
// module's next load, adds swap because memory is small (checked in /proc/swaps), says ok, and a
// second run changes nothing. A swap file on ZFS (or on a file system that
// cannot hold one) is refused with the reason.
func TestTargetBootstrap(t *testing.T) {
	h := vmHost(t)
	param := "/sys/module/zfs/parameters/zfs_arc_max"
	before := strings.TrimSpace(h.sh(t, `cat "$1"`, param))
	t.Cleanup(func() {
		h.shErr(`echo "$1" >"$2"; rm -f /etc/modprobe.d/zz-zcloud-arc.conf "$3"`, before, param, bootstrap.StatusPath)
	})

	// Refusals first: nothing is swapped on.
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 1<<30)
	o := bootstrap.Defaults()
	o.SwapBelowMiB, o.SwapMiB, o.SwapFile = 1<<20, 64, "/"+p.String()+"/swapfile"
	err, stderr, status := h.runBootstrap(t, o)
	if err == nil || !strings.Contains(status, "failed: /"+p.String()+" is on ZFS") || !strings.Contains(stderr, "swap on a zvol can deadlock") {
		t.Fatalf("swap file on ZFS: err %v, status %q, stderr %q", err, status, stderr)
	}
	o.SwapFile = "/swapfile" // the guest's root is a RAM file system
	err, _, status = h.runBootstrap(t, o)
	if err == nil || !strings.Contains(status, "cannot hold a swap file") {
		t.Fatalf("swap file on the initramfs root: err %v, status %q", err, status)
	}
	if swaps := h.sh(t, `tail -n +2 /proc/swaps`); strings.TrimSpace(swaps) != "" {
		t.Fatalf("a refused bootstrap left swap on: %s", swaps)
	}

	// The real run: swap on a blank disk (the guest has no file system
	// that can hold a swap file; the file branch differs only in creating it).
	devs := h.attachDisks(t, 1, 256<<20)
	dev := devs[0].String()
	t.Cleanup(func() { h.shErr(`swapoff "$1"`, dev) })
	o.ARCMaxPercent, o.SwapFile = 40, dev
	if err, stderr, status := h.runBootstrap(t, o); err != nil || status != "ok" {
		t.Fatalf("bootstrap: %v, status %q\n%s", err, status, stderr)
	}

	// What the script should have set for this guest's memory.
	memKiB, err := strconv.ParseInt(strings.TrimSpace(h.sh(t, `sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo`)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	memMiB := memKiB / 1024
	arcMiB := memMiB * 40 / 100
	if memMiB-arcMiB < 1024 {
		arcMiB = memMiB - 1024
	}
	arcMiB = max(arcMiB, 128)
	want := fmt.Sprint(arcMiB << 20)
	if want == before {
		t.Fatalf("the test cannot tell: the VM's zfs_arc_max is already %s", before)
	}
	if got := strings.TrimSpace(h.sh(t, `cat "$1"`, param)); got != want {
		t.Errorf("zfs_arc_max %s, want %s (memory %d MiB)", got, want, memMiB)
	}
	if got := strings.TrimSpace(h.sh(t, `awk '$1 == "c_max" {print $3}' /proc/spl/kstat/zfs/arcstats`)); got != want {
		t.Errorf("arcstats c_max %s, want %s: the ARC did not take the cap", got, want)
	}
	if got := h.sh(t, `cat /etc/modprobe.d/zz-zcloud-arc.conf`); !strings.Contains(got, "options zfs zfs_arc_max="+want+"\n") {
		t.Errorf("modprobe.d: %q", got)
	}
	// /proc/swaps (what swapon --show reads; the guest's swapon is busybox's):
	// the device, as a partition, of the disk's size.
	real := strings.TrimSpace(h.sh(t, `readlink -f "$1"`, dev))
	swaps := h.sh(t, `cat /proc/swaps`)
	on := false
	for _, line := range strings.Split(swaps, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == real && f[1] == "partition" {
			kib, _ := strconv.ParseInt(f[2], 10, 64)
			on = kib > 200<<10 // a 256 MiB disk, less the swap header
		}
	}
	if !on {
		t.Fatalf("swap on %s (%s) not on:\n%s", dev, real, swaps)
	}
	t.Logf("memory %d MiB: zfs_arc_max %s -> %s; /proc/swaps:\n%s", memMiB, before, want, strings.TrimSpace(swaps))

	// Again: still ok, still one swap area.
	if err, stderr, status := h.runBootstrap(t, o); err != nil || status != "ok" {
		t.Fatalf("second bootstrap: %v, status %q\n%s", err, status, stderr)
	}
	if n := strings.Count(h.sh(t, `tail -n +2 /proc/swaps`), "\n"); n != 1 {
		t.Errorf("after a second run %d swap areas", n)
	}
}
