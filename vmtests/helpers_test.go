package vmtests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"zcloud/internal/vmhost"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// transferGuestPort is where `zcloud transfer recv` listens in the guest; the
// VM forwards a free host port to it.
const transferGuestPort = 7100

func TestMain(m *testing.M) {
	opts := vmhost.DefaultTestOptions()
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		opts.Forwards = map[int]int{ln.Addr().(*net.TCPAddr).Port: transferGuestPort}
		ln.Close()
	}
	vmhost.SetTestOptions(opts)
	os.Exit(vmhost.Main(m))
}

// host is the VM seen through zfsexec: its SSH runner (pinned host key) and
// the zfs/zpool/cryptsetup command sets with detected capabilities.
type host struct {
	vm    *vmhost.VM
	r     zfsexec.Runner
	caps  zfsexec.Capabilities
	zfs   zfsexec.ZFS
	zpool zfsexec.Zpool
	luks  zfsexec.Cryptsetup
}

var (
	hostOnce sync.Once
	hostVal  *host
	hostErr  error
)

// vmHost boots (once per process) the VM and connects zfsexec's SSH runner.
func vmHost(t *testing.T) *host {
	t.Helper()
	vm := vmhost.Require(t)
	hostOnce.Do(func() {
		signer, err := zfsexec.LoadSigner(vm.KeyPath)
		if err != nil {
			hostErr = err
			return
		}
		r, err := zfsexec.NewSSH(zfsexec.SSHConfig{
			Host:    vm.Host,
			Port:    vm.Port,
			User:    vm.User,
			Signer:  signer,
			HostKey: vm.HostKey,
		}, nil)
		if err != nil {
			hostErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		caps, err := zfsexec.DetectCapabilities(ctx, r)
		if err != nil {
			hostErr = err
			return
		}
		hostVal = &host{vm: vm, r: r, caps: caps,
			zfs:   zfsexec.ZFS{R: r, Caps: caps},
			zpool: zfsexec.Zpool{R: r, Caps: caps},
			luks:  zfsexec.Cryptsetup{R: r},
		}
	})
	if hostErr != nil {
		t.Fatalf("connect to the VM through zfsexec: %v", hostErr)
	}
	return hostVal
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sh runs a fixed shell snippet in the guest (test set-up and inspection
// only; what is under test goes through zfsexec's builders).
func (h *host) sh(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := h.shErr(script, args...)
	if err != nil {
		t.Fatalf("guest sh %q: %v", script, err)
	}
	return out
}

func (h *host) shErr(script string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	argv := append([]string{"sh", "-c", script, "sh"}, args...)
	res, err := h.r.Run(ctx, zfsexec.Cmd{Argv: argv})
	return string(res.Stdout), err
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// newSerial is an EBS-like volume id that fits virtio-blk's 20-byte serial
// ("vol" + 17 hex digits, as /dev/disk/by-id shows "vol0123..." on EC2 NVMe).
func newSerial() string { return "vol" + randHex(9)[:17] }

// attachDisks hot-plugs n fresh disks and waits until the guest shows them
// by serial; they are detached when the test ends.
func (h *host) attachDisks(t *testing.T, n int, size int64) []zfsname.Device {
	t.Helper()
	var devs []zfsname.Device
	for i := 0; i < n; i++ {
		serial := newSerial()
		if err := h.vm.AttachDisk(serial, size); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := h.vm.DetachDisk(serial); err != nil {
				t.Errorf("detach %s: %v", serial, err)
			}
		})
		d, err := zfsname.ParseDevice(vmhost.DevicePath(serial))
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	for _, d := range devs {
		h.waitDevice(t, d.String(), true)
	}
	return devs
}

// waitDevice waits until path exists (or is gone) in the guest.
func (h *host) waitDevice(t *testing.T, path string, present bool) {
	t.Helper()
	test := "test -b \"$1\""
	if !present {
		test = "! test -e \"$1\""
	}
	h.sh(t, `for i in $(seq 1 120); do if `+test+`; then exit 0; fi; sleep 0.5; done; echo "timed out waiting for $1" >&2; exit 1`, path)
}

// newPool creates a pool with a unique name on n hot-plugged disks; it is
// destroyed (before the disks are detached) when the test ends.
func (h *host) newPool(t *testing.T, l zfsexec.Layout, n int, size int64) (zfsname.Pool, []zfsname.Device) {
	t.Helper()
	devs := h.attachDisks(t, n, size)
	p := h.poolOn(t, l, devs)
	return p, devs
}

func (h *host) poolOn(t *testing.T, l zfsexec.Layout, devs []zfsname.Device) zfsname.Pool {
	t.Helper()
	p, err := zfsname.ParsePool("vt" + randHex(4))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 5*time.Minute)
	if err := h.zpool.Create(ctx, p, l, devs, zfsexec.PoolCreateOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.destroyPool(t, p) })
	return p
}

func (h *host) destroyPool(t *testing.T, p zfsname.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.zpool.Destroy(ctx, p, true); err != nil && !strings.Contains(err.Error(), "no such pool") {
		t.Errorf("destroy pool %s: %v", p, err)
	}
}

// createEncrypted makes an encrypted filesystem whose passphrase is read from
// stdin (keylocation=prompt). zfsexec.ZFS.Create takes no stdin, so this
// runs `zfs create` through the runner directly (key on stdin, not argv).
func (h *host) createEncrypted(t *testing.T, d zfsname.Dataset, key string, extra ...string) {
	t.Helper()
	argv := []string{"zfs", "create", "-o", "encryption=aes-256-gcm", "-o", "keyformat=passphrase", "-o", "keylocation=prompt"}
	for _, e := range extra {
		argv = append(argv, "-o", e)
	}
	argv = append(argv, d.String())
	if strings.Contains(strings.Join(argv, " "), key) {
		t.Fatal("key in argv")
	}
	ctx := ctxT(t, time.Minute)
	if _, err := h.r.Run(ctx, zfsexec.Cmd{Argv: argv, Stdin: strings.NewReader(key + "\n")}); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes n bytes of random data to path in the guest and returns
// its SHA-256 as sha256sum prints it.
func (h *host) writeRandom(t *testing.T, path string, mib int) string {
	t.Helper()
	return h.sh(t, `dd if=/dev/urandom of="$1" bs=1M count="$2" 2>/dev/null && sync && s=$(sha256sum "$1") && echo "${s%% *}"`, path, fmt.Sprint(mib))
}

func (h *host) sha256(t *testing.T, path string) string {
	t.Helper()
	return h.sh(t, `s=$(sha256sum "$1") && echo "${s%% *}"`, path)
}

func (h *host) prop(t *testing.T, target zfsexec.Target, name zfsname.PropName) string {
	t.Helper()
	v, err := h.zfs.GetOne(ctxT(t, time.Minute), target, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pipe streams a zfs send into a zfs receive through this process (as the
// replication does between hosts), optionally cutting the stream after limit
// bytes (limit < 0: no cut). It returns the send and receive errors.
func (h *host) pipe(ctx context.Context, snap zfsname.Snapshot, so zfsexec.SendOptions, target zfsname.Dataset, ro zfsexec.ReceiveOptions, limit int64, tap io.Writer) (sendErr, recvErr error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	var w io.Writer = pw
	if tap != nil {
		w = io.MultiWriter(pw, tap)
	}
	if limit >= 0 {
		w = &cutWriter{w: w, left: limit, cut: func() { pw.Close() }}
	}
	done := make(chan error, 1)
	go func() {
		err := h.zfs.Send(ctx, snap, so, w)
		pw.CloseWithError(err)
		done <- err
	}()
	recvErr = h.zfs.Receive(ctx, target, ro, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if recvErr != nil || limit >= 0 {
		cancel()
	}
	sendErr = <-done
	return sendErr, recvErr
}

// cutWriter passes left bytes through, then closes the stream (cut) and
// fails further writes: a connection lost in the middle of a transfer.
type cutWriter struct {
	w    io.Writer
	left int64
	cut  func()
	done bool
}

var errCut = fmt.Errorf("stream cut by the test")

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.done {
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		n, _ := c.w.Write(p[:c.left])
		c.done = true
		c.cut()
		return n, errCut
	}
	c.left -= int64(len(p))
	return c.w.Write(p)
}

// capture collects a stream in memory (tests only; streams here are small).
type capture struct{ bytes.Buffer }
