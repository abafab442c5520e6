package vmhost_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"zcloud/internal/vmhost"
)

func TestMain(m *testing.M) { os.Exit(vmhost.Main(m)) }

// run is a bare x/crypto/ssh exec used only to test vmhost itself; the
// project's tests use zfsexec's SSH runner.
func run(t *testing.T, vm *vmhost.VM, cmd string) string {
	t.Helper()
	cfg, err := vm.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", vm.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	if err := s.Run(cmd); err != nil {
		t.Fatalf("%s: %v\n%s%s", cmd, err, out.String(), errb.String())
	}
	return out.String()
}

func TestVMBasics(t *testing.T) {
	vm := vmhost.Require(t)
	if !strings.HasPrefix(vm.KnownHostsLine, fmt.Sprintf("[127.0.0.1]:%d ssh-ed25519 ", vm.Port)) {
		t.Errorf("known_hosts line %q", vm.KnownHostsLine)
	}
	out := run(t, vm, "zfs version && zpool version && cryptsetup --version && echo hi | sha256sum && uname -r")
	t.Log(out)
	if !strings.Contains(out, "zfs-2.3") || !strings.Contains(out, "zfs-kmod-2.3") {
		t.Errorf("want OpenZFS 2.3 userland and module, got %q", out)
	}
	for _, d := range vmhost.DefaultTestOptions().Disks {
		run(t, vm, "test -b "+vmhost.DevicePath(d.Serial))
	}
}

func TestWrongHostKeyRefused(t *testing.T) {
	vm := vmhost.Require(t)
	cfg, err := vm.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	other, _, _, _, err := ssh.ParseAuthorizedKey([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HostKeyCallback = ssh.FixedHostKey(other)
	if c, err := ssh.Dial("tcp", vm.Addr(), cfg); err == nil {
		c.Close()
		t.Fatal("connected although the host key does not match the pinned one")
	}
}

func TestHotPlug(t *testing.T) {
	vm := vmhost.Require(t)
	const serial = "vol0fedcba9876543210"
	if err := vm.AttachDisk(serial, 1<<30); err != nil {
		t.Fatal(err)
	}
	dev := vmhost.DevicePath(serial)
	out := run(t, vm, "for i in $(seq 1 60); do test -b "+dev+" && break; sleep 1; done; readlink -f "+dev+" && blockdev --getsize64 "+dev)
	if !strings.Contains(out, "/dev/vd") || !strings.Contains(out, "1073741824") {
		t.Fatalf("hot-plugged disk: %q", out)
	}
	t0 := time.Now()
	if err := vm.DetachDisk(serial); err != nil {
		t.Fatal(err)
	}
	t.Logf("detach took %s", time.Since(t0))
	run(t, vm, "for i in $(seq 1 30); do test -e "+dev+" || exit 0; sleep 1; done; echo still there; exit 1")
	// Re-attach with the same serial works after a detach.
	if err := vm.AttachDisk(serial, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := vm.DetachDisk(serial); err != nil {
		t.Fatal(err)
	}
}
