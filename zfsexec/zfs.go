package zfsexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"zcloud/zfsname"
)

// ZFS runs zfs commands on one host. Caps come from DetectCapabilities; with
// zero Caps no feature is refused up front.
type ZFS struct {
	R    Runner
	Caps Capabilities
}

func (z ZFS) run(ctx context.Context, argv ...string) (Result, error) {
	return z.R.Run(ctx, Cmd{Argv: argv})
}

// notFound reports whether err says the dataset/snapshot/pool is missing.
func notFound(err error) bool { return errors.Is(err, ErrDatasetNotFound) }

// Exists reports whether a filesystem/volume exists.
func (z ZFS) Exists(ctx context.Context, d zfsname.Dataset) (bool, error) {
	return z.exists(ctx, d.String())
}

// SnapshotExists reports whether a snapshot exists.
func (z ZFS) SnapshotExists(ctx context.Context, s zfsname.Snapshot) (bool, error) {
	return z.exists(ctx, s.String())
}

func (z ZFS) exists(ctx context.Context, name string) (bool, error) {
	_, err := z.run(ctx, "zfs", "list", "-H", "-o", "name", name)
	if err == nil {
		return true, nil
	}
	if notFound(err) {
		return false, nil
	}
	return false, err
}

// ListDatasets lists root and every filesystem/volume below it, in zfs order
// (parents before children).
func (z ZFS) ListDatasets(ctx context.Context, root zfsname.Dataset) ([]zfsname.Dataset, error) {
	res, err := z.run(ctx, "zfs", "list", "-H", "-o", "name", "-t", "filesystem,volume", "-r", root.String())
	if err != nil {
		return nil, err
	}
	return parseDatasetNames(res.Stdout)
}

func parseDatasetNames(out []byte) ([]zfsname.Dataset, error) {
	var ds []zfsname.Dataset
	for i, line := range outputLines(out) {
		d, err := zfsname.ParseDataset(line)
		if err != nil {
			return nil, &ParseError{"zfs list", i + 1, line, err.Error()}
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// SnapshotInfo is one snapshot with the properties replication needs.
type SnapshotInfo struct {
	Snapshot  zfsname.Snapshot
	GUID      uint64
	CreateTXG uint64
	Creation  int64  // unix seconds
	Used      uint64 // bytes
}

var snapshotProps = []zfsname.PropName{"guid", "createtxg", "creation", "used"}

// ListSnapshots lists d's own snapshots (not its children's), oldest first
// by createtxg. It uses `zfs get -Hp -d 1`, the parsable form both OpenZFS
// and zfs-fuse (which has no `zfs list -p`) understand.
func (z ZFS) ListSnapshots(ctx context.Context, d zfsname.Dataset) ([]SnapshotInfo, error) {
	res, err := z.run(ctx, "zfs", "get", "-Hp", "-d", "1", "-o", "name,property,value", propList(snapshotProps), d.String())
	if err != nil {
		return nil, err
	}
	return parseSnapshotGet(res.Stdout, d)
}

// parseSnapshotGet pivots name/property/value rows into SnapshotInfo for the
// snapshots of d; rows for d itself and its children are skipped.
func parseSnapshotGet(out []byte, d zfsname.Dataset) ([]SnapshotInfo, error) {
	const cmd = "zfs get"
	prefix := d.String() + "@"
	byName := map[string]*SnapshotInfo{}
	seen := map[string]int{}
	var order []string
	for i, line := range outputLines(out) {
		f, err := tabFields(cmd, i+1, line, 3)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(f[0], prefix) {
			continue
		}
		si := byName[f[0]]
		if si == nil {
			s, err := zfsname.ParseSnapshot(f[0])
			if err != nil {
				return nil, &ParseError{cmd, i + 1, line, err.Error()}
			}
			si = &SnapshotInfo{Snapshot: s}
			byName[f[0]] = si
			order = append(order, f[0])
		}
		v, err := parseUint(cmd, i+1, line, f[1], f[2])
		if err != nil {
			return nil, err
		}
		switch f[1] {
		case "guid":
			si.GUID = v
		case "createtxg":
			si.CreateTXG = v
		case "creation":
			si.Creation = int64(v)
		case "used":
			si.Used = v
		default:
			return nil, &ParseError{cmd, i + 1, line, "unexpected property " + f[1]}
		}
		seen[f[0]]++
	}
	out2 := make([]SnapshotInfo, 0, len(order))
	for _, n := range order {
		if seen[n] != len(snapshotProps) {
			return nil, &ParseError{Cmd: cmd, Reason: fmt.Sprintf("snapshot %s: got %d of %d properties", n, seen[n], len(snapshotProps))}
		}
		out2 = append(out2, *byName[n])
	}
	sort.SliceStable(out2, func(i, j int) bool { return out2[i].CreateTXG < out2[j].CreateTXG })
	return out2, nil
}

// BookmarkInfo is one bookmark.
type BookmarkInfo struct {
	Bookmark  zfsname.Bookmark
	GUID      uint64
	CreateTXG uint64
}

// ListBookmarks lists d's bookmarks, oldest first.
func (z ZFS) ListBookmarks(ctx context.Context, d zfsname.Dataset) ([]BookmarkInfo, error) {
	if err := z.Caps.unsupported(z.Caps.Bookmarks, "bookmarks"); err != nil {
		return nil, err
	}
	res, err := z.run(ctx, "zfs", "list", "-Hp", "-t", "bookmark", "-o", "name,guid,createtxg", "-d", "1", d.String())
	if err != nil {
		return nil, err
	}
	return parseBookmarkList(res.Stdout)
}

func parseBookmarkList(out []byte) ([]BookmarkInfo, error) {
	const cmd = "zfs list -t bookmark"
	var bs []BookmarkInfo
	for i, line := range outputLines(out) {
		f, err := tabFields(cmd, i+1, line, 3)
		if err != nil {
			return nil, err
		}
		b, err := zfsname.ParseBookmark(f[0])
		if err != nil {
			return nil, &ParseError{cmd, i + 1, line, err.Error()}
		}
		guid, err := parseUint(cmd, i+1, line, "guid", f[1])
		if err != nil {
			return nil, err
		}
		txg, err := parseUint(cmd, i+1, line, "createtxg", f[2])
		if err != nil {
			return nil, err
		}
		bs = append(bs, BookmarkInfo{b, guid, txg})
	}
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].CreateTXG < bs[j].CreateTXG })
	return bs, nil
}

// Property is one row of `zfs get -Hp -o name,property,value,source`.
// Value "-" means not applicable.
type Property struct {
	Name     string // dataset, snapshot or bookmark
	Property string
	Value    string
	Source   string // "local", "default", "inherited from tank", "received", "-"
}

// Target is anything zfs get/set accepts: Dataset, Snapshot, Bookmark.
type Target interface{ String() string }

// Get reads properties (parsable values: bytes, unix seconds) of targets.
func (z ZFS) Get(ctx context.Context, props []zfsname.PropName, targets ...Target) ([]Property, error) {
	if len(props) == 0 || len(targets) == 0 {
		return nil, errors.New("zfs get: need at least one property and one target")
	}
	argv := []string{"zfs", "get", "-Hp", "-o", "name,property,value,source", propList(props)}
	for _, t := range targets {
		if t.String() == "" {
			return nil, errors.New("zfs get: empty target")
		}
		argv = append(argv, t.String())
	}
	res, err := z.R.Run(ctx, Cmd{Argv: argv})
	if err != nil {
		return nil, err
	}
	return parseGet(res.Stdout)
}

// GetOne reads one property of one target.
func (z ZFS) GetOne(ctx context.Context, t Target, prop zfsname.PropName) (string, error) {
	ps, err := z.Get(ctx, []zfsname.PropName{prop}, t)
	if err != nil {
		return "", err
	}
	if len(ps) != 1 {
		return "", &ParseError{Cmd: "zfs get", Reason: fmt.Sprintf("want 1 row, got %d", len(ps))}
	}
	return ps[0].Value, nil
}

func parseGet(out []byte) ([]Property, error) {
	var ps []Property
	for i, line := range outputLines(out) {
		f, err := tabFields("zfs get", i+1, line, 4)
		if err != nil {
			return nil, err
		}
		ps = append(ps, Property{f[0], f[1], f[2], f[3]})
	}
	return ps, nil
}

// Set sets properties on a dataset.
func (z ZFS) Set(ctx context.Context, d Target, props Props) error {
	if props.Len() == 0 {
		return nil
	}
	// One property per command: zfs-fuse's `zfs set` takes exactly one.
	kv := props.args("")
	for i := 1; i < len(kv); i += 2 {
		if _, err := z.run(ctx, "zfs", "set", kv[i], d.String()); err != nil {
			return err
		}
	}
	return nil
}

// CreateOptions for Create.
type CreateOptions struct {
	Parents bool  // -p: create missing parents
	Props   Props // -o name=value
}

// Create makes a filesystem.
func (z ZFS) Create(ctx context.Context, d zfsname.Dataset, o CreateOptions) error {
	argv := []string{"zfs", "create"}
	if o.Parents {
		argv = append(argv, "-p")
	}
	argv = append(argv, o.Props.args("-o")...)
	argv = append(argv, d.String())
	_, err := z.R.Run(ctx, Cmd{Argv: argv})
	return err
}

// Snapshot takes snapshots atomically in one command (all or none).
// Recursive (-r) also snapshots every descendant. zfs-fuse takes only one
// snapshot per command: several are refused there as unsupported.
func (z ZFS) Snapshot(ctx context.Context, recursive bool, props Props, snaps ...zfsname.Snapshot) error {
	if len(snaps) == 0 {
		return errors.New("zfs snapshot: no snapshot given")
	}
	if len(snaps) > 1 {
		if err := z.Caps.unsupported(z.Caps.MultiSnapshot, "several snapshots in one zfs snapshot"); err != nil {
			return err
		}
	}
	argv := []string{"zfs", "snapshot"}
	if recursive {
		argv = append(argv, "-r")
	}
	argv = append(argv, props.args("-o")...)
	for _, s := range snaps {
		argv = append(argv, s.String())
	}
	_, err := z.R.Run(ctx, Cmd{Argv: argv})
	return err
}

// DestroySnapshot destroys one snapshot; recursive destroys the same-named
// snapshot of every descendant. A held snapshot fails with ErrBusy.
func (z ZFS) DestroySnapshot(ctx context.Context, s zfsname.Snapshot, recursive bool) error {
	argv := []string{"zfs", "destroy"}
	if recursive {
		argv = append(argv, "-r")
	}
	_, err := z.R.Run(ctx, Cmd{Argv: append(argv, s.String())})
	return err
}

// DestroyDataset destroys a filesystem; recursive (-r) includes children and
// snapshots.
func (z ZFS) DestroyDataset(ctx context.Context, d zfsname.Dataset, recursive bool) error {
	if !strings.Contains(d.String(), "/") {
		return fmt.Errorf("zfs destroy %s: refusing to destroy a pool's root dataset (use Zpool.Destroy)", d)
	}
	if err := z.fuseUnmountTree(ctx, d); err != nil {
		return err
	}
	argv := []string{"zfs", "destroy"}
	if recursive {
		argv = append(argv, "-r")
	}
	return z.fuseRetryBusy(ctx, func() error {
		_, err := z.R.Run(ctx, Cmd{Argv: append(argv, d.String())})
		return err
	})
}

// fuseRetryBusy retries f while zfs-fuse answers "busy": right after an
// unmount it still holds the dataset for a moment (seen live, about one
// run in three). Other implementations run f once.
func (z ZFS) fuseRetryBusy(ctx context.Context, f func() error) error {
	err := f()
	for wait := 100 * time.Millisecond; z.Caps.Impl == ImplZFSFuse && errors.Is(err, ErrBusy) && wait < 5*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		err = f()
	}
	return err
}

// fuseUnmountTree unmounts d and its descendants, deepest first, on
// zfs-fuse only: its rename and destroy cannot unmount by themselves and
// answer "dataset is busy" (checked live), while OpenZFS handles it.
func (z ZFS) fuseUnmountTree(ctx context.Context, d zfsname.Dataset) error {
	if z.Caps.Impl != ImplZFSFuse {
		return nil
	}
	ds, err := z.ListDatasets(ctx, d)
	if err != nil {
		return err
	}
	for i := len(ds) - 1; i >= 0; i-- {
		if err := z.Unmount(ctx, ds[i], false); err != nil && !notMounted(err) {
			return err
		}
	}
	return nil
}

func notMounted(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && strings.Contains(ee.Stderr, "not currently mounted")
}

// Rename renames a filesystem; parents (-p) creates missing parents.
func (z ZFS) Rename(ctx context.Context, from, to zfsname.Dataset, parents bool) error {
	if err := z.fuseUnmountTree(ctx, from); err != nil {
		return err
	}
	argv := []string{"zfs", "rename"}
	if parents {
		argv = append(argv, "-p")
	}
	err := z.fuseRetryBusy(ctx, func() error {
		_, err := z.R.Run(ctx, Cmd{Argv: append(argv, from.String(), to.String())})
		return err
	})
	if err != nil {
		return err
	}
	if z.Caps.Impl == ImplZFSFuse {
		return z.fuseMountTree(ctx, to)
	}
	return nil
}

// fuseMountTree mounts what fuseUnmountTree unmounted, parents first.
func (z ZFS) fuseMountTree(ctx context.Context, d zfsname.Dataset) error {
	ds, err := z.ListDatasets(ctx, d)
	if err != nil {
		return err
	}
	for _, x := range ds {
		if err := z.Mount(ctx, x); err != nil && !alreadyMounted(err) {
			return err
		}
	}
	return nil
}

func alreadyMounted(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && (strings.Contains(ee.Stderr, "already mounted") || strings.Contains(ee.Stderr, "canmount"))
}

// Bookmark creates bookmark b from snapshot s.
func (z ZFS) Bookmark(ctx context.Context, s zfsname.Snapshot, b zfsname.Bookmark) error {
	if err := z.Caps.unsupported(z.Caps.Bookmarks, "zfs bookmark"); err != nil {
		return err
	}
	_, err := z.run(ctx, "zfs", "bookmark", s.String(), b.String())
	return err
}

// DestroyBookmark destroys bookmark b (a bookmark holds no data: only its
// snapshot's GUID and birth time).
func (z ZFS) DestroyBookmark(ctx context.Context, b zfsname.Bookmark) error {
	if err := z.Caps.unsupported(z.Caps.Bookmarks, "bookmarks"); err != nil {
		return err
	}
	_, err := z.run(ctx, "zfs", "destroy", b.String())
	return err
}

// ResumeToken returns d's receive_resume_token, "" when there is none (or
// this ZFS has no resumable receive).
func (z ZFS) ResumeToken(ctx context.Context, d zfsname.Dataset) (zfsname.ResumeToken, error) {
	if !z.Caps.ResumableReceive && z.Caps.Impl != "" {
		return "", nil
	}
	v, err := z.GetOne(ctx, d, "receive_resume_token")
	if err != nil {
		return "", err
	}
	if v == "-" || v == "" {
		return "", nil
	}
	return zfsname.ParseResumeToken(v)
}

// LoadKey loads d's encryption key from stdin (`-L prompt`): the key never
// appears in argv, a file, or logs.
func (z ZFS) LoadKey(ctx context.Context, d zfsname.Dataset, key io.Reader) error {
	if err := z.Caps.unsupported(z.Caps.NativeEncryption, "native encryption (zfs load-key)"); err != nil {
		return err
	}
	_, err := z.R.Run(ctx, Cmd{Argv: []string{"zfs", "load-key", "-L", "prompt", d.String()}, Stdin: key})
	return err
}

// UnloadKey unloads d's key (d must be unmounted).
func (z ZFS) UnloadKey(ctx context.Context, d zfsname.Dataset) error {
	if err := z.Caps.unsupported(z.Caps.NativeEncryption, "native encryption (zfs unload-key)"); err != nil {
		return err
	}
	_, err := z.run(ctx, "zfs", "unload-key", d.String())
	return err
}

// Mount mounts d.
func (z ZFS) Mount(ctx context.Context, d zfsname.Dataset) error {
	_, err := z.run(ctx, "zfs", "mount", d.String())
	return err
}

// Unmount unmounts d; force (-f) even when busy.
func (z ZFS) Unmount(ctx context.Context, d zfsname.Dataset, force bool) error {
	argv := []string{"zfs", "unmount"}
	if force {
		argv = append(argv, "-f")
	}
	_, err := z.R.Run(ctx, Cmd{Argv: append(argv, d.String())})
	return err
}

// NoPoolError: a dataset's pool does not exist on the host. zfs create
// would say only "missing dataset name"; retrying cannot create a pool.
type NoPoolError struct {
	Pool    zfsname.Pool
	Host    string
	Dataset zfsname.Dataset // the dataset that needed it
}

func (e *NoPoolError) Error() string {
	return fmt.Sprintf("pool %s does not exist on %s (target dataset %s): create or import it, or name another dataset", e.Pool, e.Host, e.Dataset)
}

// EnsureParent creates d's parent, as zfs receive needs it; a missing pool
// is a *NoPoolError.
func (z ZFS) EnsureParent(ctx context.Context, d zfsname.Dataset) error {
	root := d.Pool().Root()
	if exists, err := z.Exists(ctx, root); err != nil {
		return err
	} else if !exists {
		return &NoPoolError{Pool: d.Pool(), Host: z.R.Host(), Dataset: d}
	}
	parent, ok := d.Parent()
	if !ok {
		return nil
	}
	if exists, err := z.Exists(ctx, parent); err != nil || exists {
		return err
	}
	return z.Create(ctx, parent, CreateOptions{Parents: true})
}
