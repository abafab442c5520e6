package vmtests

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"zcloud/zfsexec"
)

// The guest has what the tests rely on, and its sshd is reached only with
// the pinned host key: zfsexec's SSH runner refuses another key.
func TestVMGuestAndPinnedHostKey(t *testing.T) {
	h := vmHost(t)
	out := h.sh(t, `uname -r; for c in zfs zpool cryptsetup sha256sum cat sh; do command -v $c >/dev/null || echo "missing $c"; done; cat /sys/module/zfs/version`)
	if strings.Contains(out, "missing") || !strings.Contains(out, "2.3.") || !strings.Contains(out, "-amd64") {
		t.Fatalf("guest: %s", out)
	}
	if !strings.HasPrefix(h.vm.KnownHostsLine, "[127.0.0.1]:") {
		t.Errorf("known_hosts line %q", h.vm.KnownHostsLine)
	}

	signer, err := zfsexec.LoadSigner(h.vm.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, cfg := range map[string]zfsexec.SSHConfig{
		"pinned other key": {HostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
		"known_hosts":      {KnownHostsFile: h.vm.KnownHosts},
	} {
		cfg.Host, cfg.Port, cfg.User, cfg.Signer = h.vm.Host, h.vm.Port, h.vm.User, signer
		r, err := zfsexec.NewSSH(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(ctx, zfsexec.Cmd{Argv: []string{"true"}})
		r.Close()
		var mismatch *zfsexec.HostKeyMismatchError
		switch name {
		case "pinned other key":
			if !errors.As(err, &mismatch) {
				t.Errorf("%s: want HostKeyMismatchError, got %v", name, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}
