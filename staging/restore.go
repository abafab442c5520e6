package staging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"filippo.io/age"
)

// RestoreReport counts what a restore wrote.
type RestoreReport struct {
	Files    int   `json:"files"`
	Symlinks int   `json:"symlinks"`
	Dirs     int   `json:"dirs"`
	Bytes    int64 `json:"bytes"`
}

// Restore decrypts the staged entry sub ("" for everything; a file or a
// directory, relative to the staging root) from the staging copy dir into
// dest, with the private keys ids. A single file goes to dest itself, or
// into dest when dest is a directory. Files are written whole under a temp
// name and renamed; runs of zero bytes become holes again.
func Restore(ctx context.Context, dir, sub, dest string, ids []age.Identity) (RestoreReport, error) {
	var rep RestoreReport
	if sub != "" && reserved(filepath.Clean(sub)) {
		return rep, fmt.Errorf("staging: %q is the staging copy's bookkeeping, not data", sub)
	}
	names, err := openNames(dir, ids)
	if err != nil {
		return rep, err
	}
	plain := func(staged string) (string, error) { return staged, nil }
	root := filepath.Join(dir, sub)
	if names != nil {
		plain = names.DecryptPath
		root = filepath.Join(dir, names.EncryptPath(filepath.Clean(sub)))
	}
	fi, err := os.Lstat(root)
	if err != nil {
		return rep, fmt.Errorf("staging: %q: %w", sub, err)
	}
	if !fi.IsDir() {
		if di, err := os.Stat(dest); err == nil && di.IsDir() {
			dest = filepath.Join(dest, filepath.Base(sub))
		}
		return rep, restoreFile(root, dest, ids, &rep)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if reserved(rel) {
			return filepath.SkipDir
		}
		rel, _ = filepath.Rel(root, path)
		if rel, err = plain(rel); err != nil {
			return err
		}
		out := filepath.Join(dest, rel)
		if d.IsDir() {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			rep.Dirs++
			return nil
		}
		return restoreFile(path, out, ids, &rep)
	})
	return rep, err
}

func restoreFile(staged, out string, ids []age.Identity, rep *RestoreReport) error {
	in, err := os.Open(staged)
	if err != nil {
		return err
	}
	defer in.Close()
	return restoreFrom(in, staged, out, ids, rep)
}

// restoreFrom decrypts one staged file read from in (named staged in
// errors) to out.
func restoreFrom(in io.Reader, staged, out string, ids []age.Identity, rep *RestoreReport) error {
	h, content, err := ReadStaged(in, ids)
	if err != nil {
		return fmt.Errorf("%s: %w", staged, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(out); err == nil && fi.IsDir() {
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	mtime := time.Unix(0, h.MtimeNs)
	if h.Type == TypeSymlink {
		os.Remove(out)
		if err := os.Symlink(h.Target, out); err != nil {
			return err
		}
		rep.Symlinks++
		return nil
	}
	tmp := out + ".zcloud-restore"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := copySparse(f, content)
	if err == nil {
		err = f.Truncate(n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, fs.FileMode(h.Mode&0o777)|modeBits(h.Mode))
	}
	if err == nil {
		err = os.Chtimes(tmp, mtime, mtime)
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", staged, err)
	}
	rep.Files++
	rep.Bytes += n
	return nil
}

func modeBits(m uint32) fs.FileMode {
	var fm fs.FileMode
	if m&0o4000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}

// copySparse copies r to f, seeking over all-zero blocks so that holes in
// the source come back as holes.
func copySparse(f *os.File, r io.Reader) (int64, error) {
	const block = 64 << 10
	buf := make([]byte, block)
	zero := make([]byte, block)
	var n int64
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if bytes.Equal(buf[:k], zero[:k]) {
				if _, err := f.Seek(int64(k), io.SeekCurrent); err != nil {
					return n, err
				}
			} else if _, err := f.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
