package staging

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"
)

// VerifyOptions choose how much Verify decrypts.
type VerifyOptions struct {
	// Sample is the fraction (0 < Sample <= 1) of files and symlinks
	// decrypted and compared; 0 or 1 means all. The listing (every name and
	// type) is always compared in full.
	Sample float64
	// Seed varies which files a sample picks (deterministic per seed).
	Seed string
}

// VerifyReport says what Verify compared and what differed.
type VerifyReport struct {
	Entries    int       `json:"entries"`   // source entries listed
	Decrypted  int       `json:"decrypted"` // staged files decrypted and compared
	Bytes      int64     `json:"bytes"`
	Mismatches []Problem `json:"mismatches,omitempty"`
}

// Verify proves, with the private keys ids, that the staging copy dir
// decrypts to the source tree: the same names and types, and for the
// sampled files the same content (SHA-256), mode and symlink target.
// Special files are not staged and not compared.
func Verify(ctx context.Context, dir, source string, ids []age.Identity, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	src, err := listTree(source, false)
	if err != nil {
		return rep, err
	}
	listed, err := listTree(dir, true)
	if err != nil {
		return rep, err
	}
	bad := func(p, why string) { rep.Mismatches = append(rep.Mismatches, Problem{p, why}) }
	names, err := openNames(dir, ids)
	if err != nil {
		return rep, err
	}
	// stg: the staged entries by their plain names; at: where each is.
	stg, at := listed, map[string]string{}
	if names != nil {
		stg = map[string]entryKind{}
		for p, k := range listed {
			plain, err := names.DecryptPath(p)
			if err != nil {
				bad(p, err.Error())
				continue
			}
			stg[plain], at[plain] = k, p
		}
	}
	for p, k := range src {
		if k == kindSpecial {
			continue
		}
		rep.Entries++
		sk, ok := stg[p]
		switch {
		case !ok:
			bad(p, "missing from the staging copy")
		case (sk == kindDir) != (k == kindDir):
			bad(p, "a directory on one side only")
		}
	}
	for p := range stg {
		if k, ok := src[p]; !ok || k == kindSpecial {
			bad(p, "in the staging copy but not in the source")
		}
	}
	var files []string
	for p, k := range src {
		if k == kindFile && stg[p] == kindFile && picked(p, o) {
			files = append(files, p)
		}
	}
	sort.Strings(files)
	for _, p := range files {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		staged := p
		if names != nil {
			staged = at[p]
		}
		n, why, err := compareOne(filepath.Join(dir, staged), filepath.Join(source, p), ids)
		if err != nil {
			return rep, err
		}
		rep.Decrypted++
		rep.Bytes += n
		if why != "" {
			bad(p, why)
		}
	}
	sort.Slice(rep.Mismatches, func(i, j int) bool { return rep.Mismatches[i].Path < rep.Mismatches[j].Path })
	if len(rep.Mismatches) > 0 {
		return rep, fmt.Errorf("staging verify: %d differences from the source, first %q: %s", len(rep.Mismatches), rep.Mismatches[0].Path, rep.Mismatches[0].Reason)
	}
	return rep, nil
}

func picked(p string, o VerifyOptions) bool {
	if o.Sample <= 0 || o.Sample >= 1 {
		return true
	}
	h := fnv.New64a()
	io.WriteString(h, o.Seed+"\x00"+p)
	return float64(h.Sum64()%1_000_000) < o.Sample*1_000_000
}

// listTree maps every entry below root (relative path) to its kind; with
// staged set, the bookkeeping directory is left out.
func listTree(root string, staged bool) (map[string]entryKind, error) {
	out := map[string]entryKind{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		if reserved(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		out[rel] = kindOf(d.Type())
		return nil
	})
	return out, err
}

// compareOne decrypts one staged file and compares it with the source
// entry; why is empty when they match. err is for what stops the whole
// verification (a wrong key).
func compareOne(staged, source string, ids []age.Identity) (n int64, why string, err error) {
	in, err := os.Open(staged)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	h, content, err := ReadStaged(in, ids)
	if err == ErrWrongKey {
		return 0, "", err
	}
	if err != nil {
		return 0, "does not decrypt: " + err.Error(), nil
	}
	fi, err := os.Lstat(source)
	if err != nil {
		return 0, "", err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(source)
		if err != nil {
			return 0, "", err
		}
		if h.Type != TypeSymlink || h.Target != target {
			return 0, fmt.Sprintf("symlink differs: staged %s %q, source -> %q", h.Type, h.Target, target), nil
		}
		return 0, "", nil
	}
	if h.Type != TypeFile {
		return 0, "staged as a " + h.Type + ", source is a file", nil
	}
	var probs []string
	if h.Mode != unixPerm(fi.Mode()) {
		probs = append(probs, fmt.Sprintf("mode %o, source %o", h.Mode, unixPerm(fi.Mode())))
	}
	sh := sha256.New()
	n, err = io.Copy(sh, content)
	if err != nil {
		return n, "content does not decrypt: " + err.Error(), nil
	}
	f, err := os.Open(source)
	if err != nil {
		return n, "", err
	}
	defer f.Close()
	ss := sha256.New()
	if _, err := io.Copy(ss, f); err != nil {
		return n, "", err
	}
	if string(sh.Sum(nil)) != string(ss.Sum(nil)) {
		probs = append(probs, fmt.Sprintf("content differs (%d bytes staged, source %d)", n, fi.Size()))
	}
	return n, strings.Join(probs, "; "), nil
}
