package zfsexec

import (
	"context"
	"sort"

	"zcloud/zfsname"
)

// SnapshotHolds is the number of user holds (userrefs) on one snapshot.
type SnapshotHolds struct {
	Snapshot zfsname.Snapshot
	Holds    int
}

// HoldCounts reads userrefs of every snapshot of d in one command, sorted
// by name; recursive includes the snapshots of every descendant. Unlike
// Holds it works on every implementation (zfs-fuse cannot list hold tags).
func (z ZFS) HoldCounts(ctx context.Context, d zfsname.Dataset, recursive bool) ([]SnapshotHolds, error) {
	argv := []string{"zfs", "get", "-Hp"}
	if recursive {
		argv = append(argv, "-r")
	} else {
		argv = append(argv, "-d", "1")
	}
	argv = append(argv, "-o", "name,value", "userrefs", d.String())
	res, err := z.run(ctx, argv...)
	if err != nil {
		return nil, err
	}
	return parseHoldCounts(res.Stdout, d, recursive)
}

// parseHoldCounts keeps the snapshot rows of d (and with recursive, of its
// descendants); `-d 1` also prints d's children, which are skipped.
func parseHoldCounts(out []byte, d zfsname.Dataset, recursive bool) ([]SnapshotHolds, error) {
	const cmd = "zfs get userrefs"
	var hs []SnapshotHolds
	for i, line := range outputLines(out) {
		f, err := tabFields(cmd, i+1, line, 2)
		if err != nil {
			return nil, err
		}
		if f[1] == "-" { // a filesystem or volume: no userrefs
			continue
		}
		s, err := zfsname.ParseSnapshot(f[0])
		if err != nil {
			return nil, &ParseError{cmd, i + 1, line, err.Error()}
		}
		if s.Dataset() != d && !(recursive && d.IsAncestorOf(s.Dataset())) {
			continue
		}
		n, err := parseUint(cmd, i+1, line, "userrefs", f[1])
		if err != nil {
			return nil, err
		}
		hs = append(hs, SnapshotHolds{Snapshot: s, Holds: int(n)})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Snapshot.String() < hs[j].Snapshot.String() })
	return hs, nil
}
