// Package local is the directory backend of objstore: the default for
// trying zcloud out and for tests. Objects are plain files under Root at
// their key's path; what the interface needs beyond the bytes (size,
// SHA-256, parts, class, metadata) lives in a JSON sidecar under
// Root/.zcloud-meta/<key>.json. Writes go to a temp file, are fsynced and
// renamed into place. Every class is immediately readable, so restores
// are no-ops.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"zcloud/cloud/objstore"
)

// Options tune a Store.
type Options struct {
	PartSize int64 // bytes per part (checksummed and written in parallel); default 16 MiB
	Parallel int   // parts written at once; default 2
}

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
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, metaDir), 0o700); err != nil {
		return nil, err
	}
	return &Store{root: abs, opts: opts}, nil
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
	tmp, err := os.CreateTemp(filepath.Dir(dst), objstore.ReservedPrefix+"-tmp-*")
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	defer tmp.Close()

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
	if err := tmp.Close(); err != nil {
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
	tmp := path + ".tmp" + randSuffix()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
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

func randSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
