package zfsexec

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"zcloud/zfsname"
)

// Hold places tag on snapshots (atomically); recursive (-r) also on the
// same-named snapshots of descendants. A tag already present is ErrExists.
func (z ZFS) Hold(ctx context.Context, tag zfsname.HoldTag, recursive bool, snaps ...zfsname.Snapshot) error {
	return z.holdCmd(ctx, "hold", tag, recursive, snaps)
}

// Release removes tag; a tag not present is ErrHoldNotFound.
func (z ZFS) Release(ctx context.Context, tag zfsname.HoldTag, recursive bool, snaps ...zfsname.Snapshot) error {
	return z.holdCmd(ctx, "release", tag, recursive, snaps)
}

func (z ZFS) holdCmd(ctx context.Context, verb string, tag zfsname.HoldTag, recursive bool, snaps []zfsname.Snapshot) error {
	if len(snaps) == 0 {
		return fmt.Errorf("zfs %s: no snapshot given", verb)
	}
	if _, err := zfsname.ParseHoldTag(string(tag)); err != nil {
		return err
	}
	argv := []string{"zfs", verb}
	if recursive {
		argv = append(argv, "-r")
	}
	argv = append(argv, string(tag))
	for _, s := range snaps {
		argv = append(argv, s.String())
	}
	_, err := z.R.Run(ctx, Cmd{Argv: argv})
	return err
}

// HoldInfo is one hold from `zfs holds -H`.
type HoldInfo struct {
	Snapshot zfsname.Snapshot
	Tag      zfsname.HoldTag
	Created  string // as printed ("Sun Nov 22 17:32 2026"), host local time
}

// Holds lists the holds on snaps. zfs-fuse cannot list holds ("pyzfs.py not
// found"): that is an UnsupportedError; HoldCount works there.
func (z ZFS) Holds(ctx context.Context, snaps ...zfsname.Snapshot) ([]HoldInfo, error) {
	if err := z.Caps.unsupported(z.Caps.Holds, "zfs holds"); err != nil {
		return nil, err
	}
	if len(snaps) == 0 {
		return nil, errors.New("zfs holds: no snapshot given")
	}
	argv := []string{"zfs", "holds", "-H"}
	for _, s := range snaps {
		argv = append(argv, s.String())
	}
	res, err := z.R.Run(ctx, Cmd{Argv: argv})
	if err != nil {
		return nil, err
	}
	return parseHolds(res.Stdout)
}

func parseHolds(out []byte) ([]HoldInfo, error) {
	const cmd = "zfs holds"
	var hs []HoldInfo
	for i, line := range outputLines(out) {
		f, err := tabFields(cmd, i+1, line, 3)
		if err != nil {
			return nil, err
		}
		s, err := zfsname.ParseSnapshot(f[0])
		if err != nil {
			return nil, &ParseError{cmd, i + 1, line, err.Error()}
		}
		tag, err := zfsname.ParseHoldTag(f[1])
		if err != nil {
			return nil, &ParseError{cmd, i + 1, line, err.Error()}
		}
		hs = append(hs, HoldInfo{s, tag, f[2]})
	}
	return hs, nil
}

// HoldCount is the number of holds on s (the userrefs property), available
// on every implementation.
func (z ZFS) HoldCount(ctx context.Context, s zfsname.Snapshot) (int, error) {
	v, err := z.GetOne(ctx, s, "userrefs")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &ParseError{Cmd: "zfs get userrefs", Reason: fmt.Sprintf("%q is not a number", v)}
	}
	return n, nil
}
