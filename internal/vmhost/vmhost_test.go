package vmhost

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The VM itself is exercised by ./vmtests (one VM per test process); these
// tests need none.

func TestValidSerial(t *testing.T) {
	for s, want := range map[string]bool{
		"vol0123456789abcdef0":  true,
		"vol00000000000000001":  true,
		"vol-0123456789abcdef0": false, // 21 bytes: over virtio-blk's 20
		"":                      false,
		"a b":                   false,
		"x;rm":                  false,
		"$(id)":                 false,
	} {
		if got := ValidSerial(s); got != want {
			t.Errorf("ValidSerial(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestAttachReadsEnv(t *testing.T) {
	dir := t.TempDir()
	env := strings.Join([]string{
		"ZCLOUD_VM_RUN_DIR=" + dir,
		"ZCLOUD_VM_PID=42",
		"ZCLOUD_VM_SSH_HOST=127.0.0.1",
		"ZCLOUD_VM_SSH_PORT=2222",
		"ZCLOUD_VM_SSH_USER=root",
		"ZCLOUD_VM_SSH_KEY=" + dir + "/id_ed25519",
		"ZCLOUD_VM_HOST_KEY=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
		"ZCLOUD_VM_KNOWN_HOSTS=" + dir + "/known_hosts",
		"ZCLOUD_VM_QMP=" + dir + "/qmp.sock",
		"ZCLOUD_VM_DISK_DIR=" + dir + "/disks",
		"ZCLOUD_VM_DISKS=vol00000000000000001",
		"ZCLOUD_VM_FORWARD_7000=17000",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "vm.env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), []byte("[127.0.0.1]:2222 ssh-ed25519 AAAA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := attach(dir, "/nonexistent", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if v.Addr() != "127.0.0.1:2222" || v.PID != 42 || v.User != "root" || v.Forwards[17000] != 7000 ||
		v.KnownHostsLine != "[127.0.0.1]:2222 ssh-ed25519 AAAA" || v.DiskPath("x") != dir+"/disks/x.img" {
		t.Fatalf("attach: %+v", v)
	}
	if _, err := v.HostPublicKey(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vm.env"), []byte("ZCLOUD_VM_SSH_PORT=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := attach(dir, "/nonexistent", os.Stderr); err == nil {
		t.Fatal("incomplete vm.env accepted")
	}
}

func TestFindScript(t *testing.T) {
	p, err := FindScript()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
}
