// Package local is the directory backend of objstore: the default for
// trying zcloud out and for tests. Objects are plain files under Root at
// their key's path; what the interface needs beyond the bytes (size,
// SHA-256, parts, class, metadata) lives in a JSON sidecar under
// Root/.zcloud-meta/<key>.json. Writes go to a temp file, are fsynced and
// renamed into place. Every class is immediately readable, so restores
// are no-ops.
//
// Temporary files are named .zcloud-tmp-* (a name no key can have) and
// their writer holds an exclusive flock on them until the rename. A write
// killed midway (SIGKILL, power loss) leaves its temp file behind with the
// lock gone; Sweep (run by New and, for what it walks past, by List)
// removes such files once they are older than Options.TempGrace. A temp
// file whose writer is alive, in this process or another, is never
// removed: its lock is held.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"zcloud/cloud/objstore"
)

// Options tune a Store.
type Options struct {
	PartSize int64 // bytes per part (checksummed and written in parallel); default 16 MiB
	Parallel int   // parts written at once; default 2
	// TempGrace is how old a temporary file (of a write that did not
	// finish) must be, besides having no live writer, before the store
	// removes it; default 10 minutes. It covers the instant between a
	// writer creating its temp file and locking it, and file systems
	// without flock, where it is the only guard (see Sweep).
	TempGrace time.Duration
}

// DefaultTempGrace is Options.TempGrace's default.
const DefaultTempGrace = 10 * time.Minute

// noLockGrace is how old a temp file must be for Sweep to remove it where
// the file system cannot tell whether its writer still holds it (no
// flock support): long past any heartbeat timeout of the upload that
// wrote it.
const noLockGrace = 24 * time.Hour

// tempPrefix starts every temporary file's name (data and sidecars).
const tempPrefix = objstore.ReservedPrefix + "-tmp-"

// Store is a directory-backed objstore.Store.
type Store struct {
	root string
	opts Options
}

var _ objstore.Store = (*Store)(nil)

const metaDir = objstore.ReservedPrefix + "-meta"

// New returns a Store rooted at dir, creating it if needed.
func New(dir string, opts Options) (*Store, error) {
	if opts.PartSize <= 0 {
		opts.PartSize = 16 << 20
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 2
	}
	if opts.TempGrace <= 0 {
		opts.TempGrace = DefaultTempGrace
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, metaDir), 0o700); err != nil {
		return nil, err
	}
	s := &Store{root: abs, opts: opts}
	// Best effort: a store on a read-only copy still opens.
	_, _ = s.Sweep()
	return s, nil
}

// Root is the directory holding the objects.
func (s *Store) Root() string { return s.root }

// Path is the file holding key's bytes (tests corrupt it on purpose).
func (s *Store) Path(key string) string { return filepath.Join(s.root, filepath.FromSlash(key)) }

func (s *Store) metaPath(key string) string {
	return filepath.Join(s.root, metaDir, filepath.FromSlash(key)+".json")
}

// sidecar is what the JSON sidecar holds.
type sidecar struct {
	Size     int64             `json:"size"`
	SHA256   string            `json:"sha256"`
	Class    objstore.Class    `json:"class"`
	Parts    []objstore.Part   `json:"parts,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Modified time.Time         `json:"modified"`
}

func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	class := opts.Class
	if class == "" {
		class = objstore.Standard
	}
	dst := s.Path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return objstore.ObjectInfo{}, err
	}
	tmp, err := createTemp(filepath.Dir(dst))
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	// Close (which drops the lock) only after the rename: until then a
	// sweeper sees the temp file as in use. The remove is a no-op after
	// the rename.
	defer os.Remove(tmp.Name())
	defer closeTemp(tmp)

	sp := objstore.Splitter{
		PartSize: s.opts.PartSize,
		Parallel: s.opts.Parallel,
		Upload: func(ctx context.Context, p objstore.Part, data []byte) error {
			_, err := tmp.WriteAt(data, p.Offset)
			return err
		},
	}
	res, err := sp.Run(ctx, r)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if size >= 0 && res.Size != size {
		return objstore.ObjectInfo{}, objstore.Permanent(fmt.Errorf("put %s: read %d bytes, caller said %d", key, res.Size, size))
	}
	if err := tmp.Sync(); err != nil {
		return objstore.ObjectInfo{}, err
	}
	meta := sidecar{Size: res.Size, SHA256: res.SHA256, Class: class, Parts: res.Parts, Metadata: opts.Metadata, Modified: time.Now().UTC()}
	// Sidecar first: a crash before the data rename leaves a sidecar
	// without data, which reads as "not found" for a new key.
	if err := s.writeMeta(key, meta); err != nil {
		return objstore.ObjectInfo{}, err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return objstore.ObjectInfo{}, err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return objstore.ObjectInfo{}, err
	}
	return meta.info(key), nil
}

func (s *Store) writeMeta(key string, m sidecar) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	path := s.metaPath(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := createTemp(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer closeTemp(f)
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func (m sidecar) info(key string) objstore.ObjectInfo {
	return objstore.ObjectInfo{
		Key: key, Size: m.Size, Class: m.Class, SHA256: m.SHA256, Parts: m.Parts,
		Modified: m.Modified, Metadata: m.Metadata, Restore: objstore.RestoreStatus{Ready: true},
	}
}

func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := objstore.CheckKey(key); err != nil {
		return objstore.ObjectInfo{}, err
	}
	st, err := os.Stat(s.Path(key))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && st.IsDir()) {
		return objstore.ObjectInfo{}, &objstore.NotFoundError{Key: key}
	}
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	b, err := os.ReadFile(s.metaPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		// A file put there by hand: describe what the file system knows.
		return objstore.ObjectInfo{Key: key, Size: st.Size(), Class: objstore.Standard, Modified: st.ModTime(),
			Restore: objstore.RestoreStatus{Ready: true}}, nil
	}
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	var m sidecar
	if err := json.Unmarshal(b, &m); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("%s: sidecar: %w", key, err)
	}
	return m.info(key), nil
}

func (s *Store) Get(ctx context.Context, key string, rng objstore.Range) (io.ReadCloser, error) {
	info, err := s.Head(ctx, key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &objstore.NotFoundError{Key: key}
	}
	if err != nil {
		return nil, err
	}
	if rng.IsWhole() {
		size := info.Size
		if info.SHA256 == "" {
			size = -1 // no sidecar: nothing recorded to check against
		}
		return objstore.VerifyReader(key, f, size, info.SHA256), nil
	}
	n := rng.Len
	if n == 0 {
		n = info.Size - rng.Off
	}
	if rng.Off < 0 || n < 0 || rng.Off > info.Size {
		f.Close()
		return nil, objstore.Permanent(fmt.Errorf("%s: range %d+%d outside %d bytes", key, rng.Off, rng.Len, info.Size))
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, rng.Off, n), f}, nil
}

func (s *Store) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	var out []objstore.ObjectInfo
	err := filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), objstore.ReservedPrefix) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			if strings.HasPrefix(d.Name(), tempPrefix) {
				_, _ = s.reap(path, true) // never an object; best effort
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := s.Head(ctx, key)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil // deleted while we walked
		}
		if err != nil {
			return err
		}
		out = append(out, info)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.CheckKey(key); err != nil {
		return err
	}
	if err := os.Remove(s.Path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(s.metaPath(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RequestRestore only checks the object exists: files are always readable.
func (s *Store) RequestRestore(ctx context.Context, key string, tier objstore.Tier, days int) error {
	_, err := s.Head(ctx, key)
	return err
}

func (s *Store) RestoreStatus(ctx context.Context, key string) (objstore.RestoreStatus, error) {
	if _, err := s.Head(ctx, key); err != nil {
		return objstore.RestoreStatus{}, err
	}
	return objstore.RestoreStatus{Ready: true}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// inflight holds the temp files this process is writing, so a Sweep in
// the same process never takes them for dead where flock is emulated with
// per-process locks (NFS).
var inflight sync.Map

// createTemp creates a temp file in dir and locks it for the writer.
func createTemp(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return nil, err
	}
	inflight.Store(f.Name(), true)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil && !lockUnsupported(err) {
		closeTemp(f)
		os.Remove(f.Name())
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// closeTemp closes a temp file (dropping its lock) and forgets it.
func closeTemp(f *os.File) {
	f.Close()
	inflight.Delete(f.Name())
}

func lockUnsupported(err error) bool {
	return errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EINVAL)
}

// legacyMetaTemp matches the sidecar temp files of earlier versions
// (<key>.json.tmp<12 hex>), written without a lock.
var legacyMetaTemp = regexp.MustCompile(`\.json\.tmp[0-9a-f]{12}$`)

// Sweep removes the temporary files that writes which never finished
// (their process was killed) left anywhere under the store, and returns
// their paths. A temp file is removed only when it is older than
// Options.TempGrace and no writer holds its lock; where the file system
// has no flock, only when it is older than a day. Objects, sidecars and
// every name that is not a temp file's are never touched. New runs it;
// List removes the stale temp files it walks past.
func (s *Store) Sweep() ([]string, error) {
	var removed []string
	meta := filepath.Join(s.root, metaDir)
	err := filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone while we walked
			}
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		locked := strings.HasPrefix(d.Name(), tempPrefix)
		legacy := !locked && legacyMetaTemp.MatchString(d.Name()) && strings.HasPrefix(path, meta+string(filepath.Separator))
		if !locked && !legacy {
			return nil
		}
		ok, err := s.reap(path, locked)
		if err != nil {
			return err
		}
		if ok {
			removed = append(removed, path)
		}
		return nil
	})
	return removed, err
}

// reap removes the temp file at path if it is stale: older than the
// grace, not being written by this process, and (locked: written by a
// writer that flocks it) its lock free, which after a SIGKILL it is.
func (s *Store) reap(path string, locked bool) (bool, error) {
	if _, mine := inflight.Load(path); mine {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, nil // not ours to judge (a link, no permission)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false, nil
	}
	age := time.Since(fi.ModTime())
	if age < s.opts.TempGrace {
		return false, nil
	}
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
	case lockUnsupported(err):
		if locked && age < noLockGrace {
			return false, nil
		}
	default:
		return false, nil // EWOULDBLOCK: a live writer holds it
	}
	// Still the same file under that name (not renamed and replaced)?
	cur, err := os.Lstat(path)
	if err != nil || !os.SameFile(cur, fi) {
		return false, nil
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
