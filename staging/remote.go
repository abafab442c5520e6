package staging

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// A staging copy that is not a local directory (a replica on a target,
// read over SSH) is restored from a tar stream of its files: the caller
// reads the copy's bookkeeping (StateFile, NamesFile), asks Remote where
// the wanted entry is, and streams `tar -C <copy> -cf - <that path>`
// into RestoreTar. Decryption happens here; the private key never goes
// to the host holding the copy.

// StateFile and NamesFile are the bookkeeping a remote restore reads
// first, relative to the copy's root.
const (
	StateFile = MetaDir + "/state.json"
	NamesFile = MetaDir + "/names.age"
)

// ErrNothingSent: the tar stream ended without an entry (the path is not
// in the copy).
var ErrNothingSent = errors.New("staging: the copy sent nothing")

// Remote is a staging copy known by its bookkeeping only.
type Remote struct {
	State State
	names *NameCipher
}

// OpenRemote parses a copy's state.json and, when its names are
// encrypted, decrypts its names.age (fetched by names, called only then)
// with the private keys ids.
func OpenRemote(state []byte, names func() ([]byte, error), ids []age.Identity) (*Remote, error) {
	var st State
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, fmt.Errorf("staging: the copy's %s: %w", StateFile, err)
	}
	r := &Remote{State: st}
	if st.Names == "" {
		return r, nil
	}
	b, err := names()
	if err != nil {
		return nil, fmt.Errorf("staging: the copy has encrypted names but its names key is missing: %w", err)
	}
	if r.names, err = namesOf(st, bytes.NewReader(b), ids); err != nil {
		return nil, err
	}
	return r, nil
}

// StagedPath is where the plain relative path sub ("" for everything) is
// in the copy, as "./..." (safe as a tar operand).
func (r *Remote) StagedPath(sub string) (string, error) {
	sub = cleanSub(sub)
	if sub != "" && reserved(sub) {
		return "", fmt.Errorf("staging: %q is the staging copy's bookkeeping, not data", sub)
	}
	if r.names != nil {
		sub = r.names.EncryptPath(sub)
	}
	return "./" + sub, nil
}

// cleanSub makes a user's path relative to the copy's root, without ..
func cleanSub(sub string) string { return strings.TrimPrefix(path.Clean("/"+sub), "/") }

// RestoreTar decrypts the entries of a tar stream of the copy's
// StagedPath(sub) into dest, as Restore does from a directory: a single
// file goes to dest (or into it, when dest is a directory).
func (r *Remote) RestoreTar(ctx context.Context, in io.Reader, sub, dest string, ids []age.Identity) (RestoreReport, error) {
	var rep RestoreReport
	root, err := r.StagedPath(sub)
	if err != nil {
		return rep, err
	}
	root = strings.TrimPrefix(root, "./")
	tr := tar.NewReader(in)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return rep, fmt.Errorf("%w for %q", ErrNothingSent, sub)
			}
			return rep, nil
		}
		if err != nil {
			return rep, fmt.Errorf("staging: reading the copy: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
		if reserved(name) {
			continue
		}
		rel := name
		if root != "" {
			if name != root && !strings.HasPrefix(name, root+"/") {
				return rep, fmt.Errorf("staging: the copy sent %q, outside %q", h.Name, sub)
			}
			rel = strings.TrimPrefix(strings.TrimPrefix(name, root), "/")
		}
		if r.names != nil {
			if rel, err = r.names.DecryptPath(rel); err != nil {
				return rep, err
			}
		}
		out := filepath.Join(dest, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(out, 0o755); err != nil {
				return rep, err
			}
			rep.Dirs++
		case tar.TypeReg:
			if rel == "" { // sub is one file
				out = dest
				if di, err := os.Stat(dest); err == nil && di.IsDir() {
					out = filepath.Join(dest, path.Base(cleanSub(sub)))
				}
			}
			if err := restoreFrom(tr, h.Name, out, ids, &rep); err != nil {
				return rep, err
			}
		default:
			return rep, fmt.Errorf("staging: the copy holds %q of tar type %q: a staging copy has only files and directories", h.Name, h.Typeflag)
		}
	}
}
