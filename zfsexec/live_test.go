package zfsexec

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"zcloud/zfsname"
)

// liveLocal returns a Local runner and the detected capabilities, or skips
// when no ZFS daemon answers here (not root, no zfs, zfs-fuse not running).
func liveLocal(t *testing.T) (*Local, Capabilities) {
	t.Helper()
	if testing.Short() {
		t.Skip("live ZFS test (-short)")
	}
	if os.Getuid() != 0 {
		t.Skip("live ZFS tests need root")
	}
	if _, err := exec.LookPath("zpool"); err != nil {
		t.Skip("no zpool binary")
	}
	r := NewLocal(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := r.Run(ctx, Cmd{Argv: []string{"zpool", "list", "-H", "-o", "name"}}); err != nil {
		t.Skipf("ZFS not usable here: %v", err)
	}
	caps, err := DetectCapabilities(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return r, caps
}

// filePool creates a pool with a unique name on sparse files in a temp dir
// and destroys it (only it) when the test ends.
func filePool(t *testing.T, r Runner, caps Capabilities, l Layout, ndev int, size int64) (zfsname.Pool, []zfsname.Device, string) {
	t.Helper()
	dir := t.TempDir()
	var devs []zfsname.Device
	for i := 0; i < ndev+2; i++ { // two spares for replace tests
		path := filepath.Join(dir, fmt.Sprintf("d%d", i))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
		d, err := zfsname.ParseDevice(path)
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	b := make([]byte, 4)
	rand.Read(b)
	p, err := zfsname.ParsePool("zt" + hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	zp := Zpool{R: r, Caps: caps}
	ctx := context.Background()
	if err := zp.Create(ctx, p, l, devs[:ndev], PoolCreateOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// zfs-fuse may answer "pool is busy" while the kernel still holds
		// files just read; it clears within seconds.
		var err error
		for i := 0; i < 10; i++ {
			if err = zp.Destroy(ctx, p, true); err == nil || !errors.Is(err, ErrBusy) {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Errorf("destroy pool %s: %v", p, err)
		}
		os.Remove("/" + p.String()) // zfs-fuse leaves the empty mountpoint
	})
	return p, devs, dir
}

// writeTree writes random files in nested directories under root.
func writeTree(t *testing.T, root string, files map[string]int) {
	t.Helper()
	for name, size := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		rand.Read(b)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// treeSums maps relative path to SHA-256 for every regular file under root.
func treeSums(t *testing.T, root string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		sums[rel] = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	sa, sb := treeSums(t, a), treeSums(t, b)
	if len(sa) == 0 {
		t.Fatalf("%s is empty", a)
	}
	if len(sa) != len(sb) {
		t.Fatalf("%s has %d files, %s has %d", a, len(sa), b, len(sb))
	}
	for k, v := range sa {
		if sb[k] != v {
			t.Errorf("%s differs between %s and %s", k, a, b)
		}
	}
}

// pipe runs Send into Receive through an io.Pipe, as replication does.
func pipe(ctx context.Context, src, dst ZFS, snap zfsname.Snapshot, so SendOptions, target zfsname.Dataset, ro ReceiveOptions) error {
	pr, pw := io.Pipe()
	sendErr := make(chan error, 1)
	go func() {
		err := src.Send(ctx, snap, so, pw)
		pw.CloseWithError(err)
		sendErr <- err
	}()
	recvErr := dst.Receive(ctx, target, ro, pr)
	pr.CloseWithError(io.ErrClosedPipe) // unblock a sender if receive failed
	if err := <-sendErr; err != nil && recvErr == nil {
		return fmt.Errorf("send: %w", err)
	}
	return recvErr
}
