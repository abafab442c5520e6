package activities

import (
	"fmt"
	"testing"

	"zcloud/zfsexec"
)

// Which failures discard the target's partial receive state. The stderr
// lines are OpenZFS 2.3.2's (zfsexec/testdata/openzfs-2.3.2/resume-capture.txt).
func TestStaleResumeDecision(t *testing.T) {
	exit := func(argv []string, stderr string) error {
		e := &zfsexec.ExitError{Host: "h", Argv: argv, Code: 255, Stderr: stderr, Kind: zfsexec.Classify(stderr)}
		return fmt.Errorf("send: %w", e)
	}
	sendT := []string{"zfs", "send", "-t", "1-abc"}
	recv := []string{"zfs", "receive", "-s", "tank/dst"}
	for _, c := range []struct {
		name    string
		err     error
		resumed bool
		want    bool
	}{
		{"snapshot destroyed on the source", exit(sendT, "cannot resume send: 'tank/src@b' used in the initial send no longer exists\n"), true, true},
		{"snapshot replaced on the source", exit(sendT, "cannot resume send: 'tank/src@a' is no longer the same snapshot used in the initial send\n"), true, true},
		{"incremental source gone", exit(sendT, "cannot resume send: incremental source 0x4e1c45a4d3a1e0f7 no longer exists\n"), true, true},
		{"resume stream after receive -A (full)", exit(recv, "cannot receive resume stream: destination 'tank/dst' does not exist\n"), true, true},
		{"resume stream after receive -A (incremental)", exit(recv, "cannot receive resume stream: kernel modules must be upgraded to receive this stream.\n"), true, true},
		{"plain stream into partial state", exit(recv, "cannot receive new filesystem stream: destination tank/dst contains partially-complete state from \"zfs receive -s\".\n"), false, true},
		{"pool gone: not stale", exit(sendT, "cannot open 'tank/src': dataset does not exist\n"), true, false},
		{"no space: not stale", exit(recv, "cannot receive resume stream: out of space\n"), true, false},
		{"stale message but not resuming", exit(sendT, "cannot resume send: 'tank/src@b' used in the initial send no longer exists\n"), false, false},
		{"connection lost", fmt.Errorf("send: ssh: connection lost"), true, false},
	} {
		if got := staleResume(c.err, c.resumed); got != c.want {
			t.Errorf("%s: staleResume = %v, want %v (%v)", c.name, got, c.want, c.err)
		}
	}
}
