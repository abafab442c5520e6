package zfsexec

import (
	"context"
	"errors"
	"strings"
	"testing"

	"zcloud/zfsname"
)

// Every failing block in the captures must classify to the kind a caller
// would act on.
func TestClassifyCaptures(t *testing.T) {
	cases := []struct {
		file string
		cmd  string // substring selecting a block in multi-block files
		want ErrorKind
	}{
		{"openzfs-2.3.2/zfs-recv-empty-stream.txt", "", ErrEmptyStream},
		{"openzfs-2.3.2/zfs-recv-s-interrupted.txt", "", ErrStreamIncomplete},
		{"zfs-fuse-0.7.0/zfs-send-missing-dataset.txt", "", ErrDatasetNotFound},
		{"zfs-fuse-0.7.0/zfs-list-p-refused.txt", "", ErrUsage},
		{"zfs-fuse-0.7.0/zfs-send-nvP-refused.txt", "", ErrUsage},
		{"zfs-fuse-0.7.0/zfs-recv-s-refused.txt", "", ErrUsage},
		{"zfs-fuse-0.7.0/zfs-bookmark-refused.txt", "", ErrUsage},
		{"zfs-fuse-0.7.0/zfs-holds-pyzfs.txt", "", ErrUsage},
		{"zfs-fuse-0.7.0/zpool-wait-refused.txt", "", ErrUsage},
		{"zfs-fuse-0.7.0/zpool-list-p-refused.txt", "", ErrUsage},
		{"zfs-fuse-0.7.0/zfs-recv-incremental-mismatch.txt", "", ErrStreamMismatch},
		{"zfs-fuse-0.7.0/live-capture.txt", "zfs version", ErrUsage},
		{"zfs-fuse-0.7.0/live-capture.txt", "/ds@m1 ", ErrUsage},
		{"zfs-fuse-0.7.0/live-capture.txt", "/ds@s1", ErrExists}, // zfs snapshot of an existing name
		{"zfs-fuse-0.7.0/live-capture.txt", "zfs create", ErrExists},
		{"zfs-fuse-0.7.0/live-capture.txt", "| zfs recv zcap1663318521/r1", ErrExists}, // full onto existing: "must specify -F"
		{"zfs-fuse-0.7.0/live-capture.txt", "< /dev/null", ErrEmptyStream},
		{"zfs-fuse-0.7.0/live-capture.txt", "zfs hold t1", ErrExists},
		{"zfs-fuse-0.7.0/live-capture.txt", "zfs destroy", ErrBusy},
		{"zfs-fuse-0.7.0/live-capture.txt", "zfs release t1", ErrHoldNotFound},
		{"zfs-fuse-0.7.0/live-capture.txt", "receive_resume_token", ErrUsage},
		{"zfs-fuse-0.7.0/live-capture.txt", "@nope", ErrDatasetNotFound},
		{"zfs-fuse-0.7.0/live-capture.txt", "status nopool", ErrNoSuchPool},
	}
	for _, c := range cases {
		found := false
		for _, b := range loadBlocks(t, c.file) {
			if b.RC == 0 || !strings.Contains(b.Cmd, c.cmd) {
				continue
			}
			found = true
			if got := exitKind(b.RC, b.Out); got != c.want {
				t.Errorf("%s [%s]: kind %v, want %v\n%s", c.file, b.Cmd, got, c.want, b.Out)
			}
			break
		}
		if !found {
			t.Errorf("%s: no failing block matching %q", c.file, c.cmd)
		}
	}
}

func TestExitErrorIsKind(t *testing.T) {
	err := error(&ExitError{Argv: []string{"zfs", "destroy"}, Code: 1, Stderr: "dataset is busy", Kind: Classify("cannot destroy 'p/d@s': dataset is busy")})
	if !errors.Is(err, ErrBusy) || errors.Is(err, ErrDatasetNotFound) {
		t.Fatalf("errors.Is wrong for %v", err)
	}
	if exitKind(127, "sh: 1: zfs: not found") != ErrCommandNotFound {
		t.Error("exit 127 is command not found")
	}
	// A missing device is not a missing command.
	if Classify("cannot open '/dev/nvme9n1': No such file or directory") == ErrCommandNotFound {
		t.Error("missing device classified as command not found")
	}
}

// The pool kinds: a missing pool is still a missing dataset to callers
// that only ask that; a pool another host did not export has its own kind;
// cryptsetup's exit 2 is a refused key.
func TestPoolErrorKinds(t *testing.T) {
	missing := error(&ExitError{Argv: []string{"zpool", "status", "nopool"}, Code: 1, Kind: exitKind(1, "cannot open 'nopool': no such pool\n")})
	if !errors.Is(missing, ErrNoSuchPool) || !errors.Is(missing, ErrDatasetNotFound) || errors.Is(missing, ErrBusy) {
		t.Errorf("no such pool: kind %v", missing.(*ExitError).Kind)
	}
	notMissing := error(&ExitError{Code: 1, Kind: exitKind(1, "cannot open 'p/x': dataset does not exist")})
	if errors.Is(notMissing, ErrNoSuchPool) {
		t.Error("a missing dataset is not a missing pool")
	}
	// OpenZFS 2.3 (zpool_main.c) and the older wording.
	for _, msg := range []string{
		"cannot import 'tank': pool was previously in use from another system.\nLast accessed by ip-10-0-0-1 (hostid=1a2b3c4d) at Mon Dec  7 02:31:09 2026\nThe pool can be imported, use 'zpool import -f' to import the pool.\n",
		"cannot import 'tank': pool may be in use from other system\nuse '-f' to import anyway\n",
	} {
		if k := exitKind(1, msg); k != ErrPoolInUseElsewhere {
			t.Errorf("%q: kind %v, want %v", msg, k, ErrPoolInUseElsewhere)
		}
	}
}

func TestCryptsetupOpenRefusedKey(t *testing.T) {
	dev, _ := zfsname.ParseDevice("/dev/xvdf")
	line := strings.Join(OpenArgv(dev, "zc-x"), " ")
	r := newReplay(block{Cmd: line, RC: 2, Out: "No key available with this passphrase.\n"})
	if err := (Cryptsetup{R: r}).Open(context.Background(), dev, "zc-x", []byte("0123456789abcdef0123")); !errors.Is(err, ErrKeyIncorrect) {
		t.Fatalf("exit 2: %v", err)
	}
	r = newReplay(block{Cmd: line, RC: 4, Out: "Device /dev/xvdf does not exist or access denied.\n"})
	if err := (Cryptsetup{R: r}).Open(context.Background(), dev, "zc-x", []byte("0123456789abcdef0123")); err == nil || errors.Is(err, ErrKeyIncorrect) {
		t.Fatalf("exit 4 is not a refused key: %v", err)
	}
}
