package vmhost

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SkipEnv names the environment variable that, set to 1, makes Require skip
// instead of fail when the VM cannot be built or started.
const SkipEnv = "ZCLOUD_SKIP_VM"

// AttachEnv names the environment variable that makes Require use a VM
// already running in that run directory (`openzfs-vm.sh start --run-dir
// DIR --disks 6 --disk-size 2G`) instead of booting one, and leave it
// running: for quick iterations by hand.
const AttachEnv = "ZCLOUD_VM_RUN_DIR"

// DefaultTestOptions are the options Require boots the shared VM with: six
// 2 GiB disks with EBS-like serials vol00000000000000001...6 (sparse files).
func DefaultTestOptions() Options {
	var disks []Disk
	for i := 1; i <= 6; i++ {
		disks = append(disks, Disk{Serial: fmt.Sprintf("vol%017x", i), Size: 2 << 30})
	}
	return Options{Disks: disks}
}

var (
	shared struct {
		once     sync.Once
		vm       *VM
		err      error
		attached bool
	}
	sharedOpts = DefaultTestOptions()
	mainUsed   atomic.Bool
)

// SetTestOptions changes the options Require uses; call it in TestMain before
// Main.
func SetTestOptions(o Options) { sharedOpts = o }

// Require returns the VM shared by this test process, booting it on first
// use. If the VM cannot be built or started the test fails, unless
// ZCLOUD_SKIP_VM=1, in which case it is skipped. The package's TestMain must
// wrap m with Main so that the VM is stopped when the tests end.
func Require(t testing.TB) *VM {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: skipping test that needs the OpenZFS VM", SkipEnv)
	}
	if !mainUsed.Load() {
		t.Fatalf("vmhost.Require: the package needs func TestMain(m *testing.M) { os.Exit(vmhost.Main(m)) }")
	}
	shared.once.Do(func() {
		if dir := os.Getenv(AttachEnv); dir != "" {
			shared.vm, shared.err = Attach(dir)
			shared.attached = true
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
		defer cancel()
		t0 := time.Now()
		shared.vm, shared.err = Start(ctx, sharedOpts)
		if shared.err == nil {
			fmt.Fprintf(os.Stderr, "vmhost: VM ready in %s at %s (run dir %s)\n",
				time.Since(t0).Round(time.Second), shared.vm.Addr(), shared.vm.RunDir)
		}
	})
	if shared.err != nil {
		t.Fatalf("OpenZFS test VM unavailable (set %s=1 to skip these tests): %v", SkipEnv, shared.err)
	}
	return shared.vm
}

// Main runs the tests and then stops the shared VM, if one was started:
//
//	func TestMain(m *testing.M) { os.Exit(vmhost.Main(m)) }
func Main(m *testing.M) int {
	mainUsed.Store(true)
	code := m.Run()
	if shared.vm != nil && !shared.attached {
		if err := shared.vm.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
