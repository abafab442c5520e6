package zfsexec

import (
	"strings"
	"testing"
)

// The messages OpenZFS 2.3.2 really prints when a resume goes stale, and
// the kinds the replication's fallback decides on.
func TestClassifyResumeCapture(t *testing.T) {
	bs := loadBlocks(t, "openzfs-2.3.2/resume-capture.txt")
	want := []struct {
		cmd  string // a prefix of the block's command line
		out  string // a part of its output
		kind ErrorKind
	}{
		{"zfs send -t 1-99ce", "used in the initial send no longer exists", ErrResumeTokenStale},
		{"zfs send -t 1-99ce", "is no longer the same snapshot used in the initial send", ErrResumeTokenStale},
		{"zfs send -t 1-0000-garbage", "resume token is corrupt", ErrResumeTokenStale},
		{"zfs send -t 1-924b", "destination 'tank/dst2' does not exist", ErrNoResumeState},
		{"zfs send -t 1-e324", "kernel modules must be upgraded", ErrNoResumeState},
		{"zfs receive -A tank/dst3", "does not have any resumable receive state to abort", ErrNoResumeState},
		{"zfs receive -A tank/dst2", "cannot open 'tank/dst2': dataset does not exist", ErrDatasetNotFound},
		{"zfs list -H -o name nopool/x", "dataset does not exist", ErrDatasetNotFound},
		{"zfs get -H -o value receive_resume_token nopool/x", "dataset does not exist", ErrDatasetNotFound},
		{"zfs send nopool/x@s", "dataset does not exist", ErrDatasetNotFound},
		{"zpool import nopool", "no such pool available", ErrNoSuchPool},
		{"zpool status nopool", "no such pool", ErrNoSuchPool},
		{"zfs send tank/src@b | zfs receive -s tank/dst4", "must specify -F", ErrExists},
		{"zfs send -i @s1 tank/enc@s2 | zfs receive tank/rawdst", "inherited key must be loaded", ErrKeyNotLoaded},
	}
	for _, w := range want {
		found := false
		for _, b := range bs {
			if !strings.HasPrefix(b.Cmd, w.cmd) || !strings.Contains(b.Out, w.out) {
				continue
			}
			found = true
			if b.RC == 0 {
				t.Errorf("%s: rc 0 in the capture", w.cmd)
			}
			if got := exitKind(b.RC, b.Out); got != w.kind {
				t.Errorf("%s: %q classified %v, want %v", w.cmd, strings.TrimSpace(b.Out), got, w.kind)
			}
		}
		if !found {
			t.Errorf("no block %q with %q in the capture", w.cmd, w.out)
		}
	}
}
