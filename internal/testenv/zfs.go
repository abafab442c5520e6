package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"zcloud/zfsname"
)

var zfsDaemon struct {
	once sync.Once
	err  error
}

// EnsureZFS makes sure a zfs-fuse daemon answers. One started here is left
// running for other test processes (zfs-fuse is a machine-wide service);
// scripts/test.sh stops it at the end if it was not running before.
func EnsureZFS(t TB) {
	t.Helper()
	zfsDaemon.once.Do(func() { zfsDaemon.err = ensureZFSDaemon() })
	if zfsDaemon.err != nil {
		t.Fatalf("zfs: %v", zfsDaemon.err)
	}
}

func zfsAnswers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "zpool", "list", "-H").Run() == nil
}

func ensureZFSDaemon() error {
	if _, err := lookPath("zpool", "/usr/sbin/zpool", "/sbin/zpool"); err != nil {
		return err
	}
	if zfsAnswers() {
		return nil
	}
	// A daemon that is running but slow to answer (a loaded machine) must
	// not get a second one beside it: two zfs-fuse daemons on one socket
	// wedge both.
	if exec.Command("pgrep", "-x", "zfs-fuse").Run() == nil {
		for i := 0; i < 60; i++ {
			if zfsAnswers() {
				return nil
			}
			time.Sleep(time.Second)
		}
		return fmt.Errorf("zfs-fuse is running but zpool does not answer (wedged? restart it)")
	}
	bin, err := lookPath("zfs-fuse", "/usr/sbin/zfs-fuse", "/usr/bin/zfs-fuse")
	if err != nil {
		return fmt.Errorf("no ZFS answers and %w", err)
	}
	cmd := exec.Command(bin, "--no-daemon")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	log, _ := os.Create(filepath.Join(os.TempDir(), "zcloud-zfs-fuse.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start zfs-fuse: %w", err)
	}
	go cmd.Wait()
	for i := 0; i < 100; i++ {
		if zfsAnswers() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("zfs-fuse started but zpool does not answer")
}

// TestPool is a zfs-fuse pool on sparse files, destroyed when the test ends.
type TestPool struct {
	Pool    zfsname.Pool
	Devices []string // the sparse files
	Dir     string
}

// Root is the pool's root dataset.
func (p *TestPool) Root() zfsname.Dataset { return p.Pool.Root() }

// Mountpoint of a dataset in this pool (zfs-fuse mounts at /<name>).
func (p *TestPool) Mountpoint(ds zfsname.Dataset) string { return "/" + ds.String() }

// RandomName returns prefix + 8 hex characters.
func RandomName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// NewPool creates a pool named prefix+random over n sparse files of sizeMB
// each, in the given vdev spec (e.g. nil for a stripe, or
// []string{"raidz1"} to put all devices in one raidz1). zfs-fuse needs 64 MB
// per device at least.
func NewPool(t TB, prefix string, n, sizeMB int, vdevType string) *TestPool {
	t.Helper()
	EnsureZFS(t)
	dir := t.TempDir()
	name := RandomName(prefix)
	args := []string{"create", "-f", "-o", "autoexpand=on", name}
	if vdevType != "" {
		args = append(args, vdevType)
	}
	var devs []string
	for i := 0; i < n; i++ {
		f := filepath.Join(dir, fmt.Sprintf("d%d.img", i))
		if err := CreateSparse(f, int64(sizeMB)<<20); err != nil {
			t.Fatalf("sparse file: %v", err)
		}
		devs = append(devs, f)
	}
	args = append(args, devs...)
	if out, err := exec.Command("zpool", args...).CombinedOutput(); err != nil {
		t.Fatalf("zpool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Cleanup(func() { DestroyPool(t, name) })
	pool, err := zfsname.ParsePool(name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return &TestPool{Pool: pool, Devices: devs, Dir: dir}
}

// CreateSparse makes a sparse file of the given size.
func CreateSparse(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Truncate(size)
}

// MustZFS runs a zfs/zpool command locally and fails the test on error.
func MustZFS(t TB, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// DestroyPool destroys a test pool, retrying: zfs-fuse reports "pool is
// busy" for a moment after a
// receive or a mount.
func DestroyPool(t TB, name string) {
	var out []byte
	var err error
	for i := 0; i < 30; i++ {
		if out, err = exec.Command("zpool", "destroy", "-f", name).CombinedOutput(); err == nil {
			return
		}
		if strings.Contains(string(out), "no such pool") {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("zpool destroy %s: %v\n%s", name, err, out)
}
