package staging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"zcloud/zfsexec"
)

// Change is one `zfs diff -FH` line with paths relative to the dataset's
// root ("" is the root itself).
type Change struct {
	Kind    byte   // '+' added, '-' removed, 'M' modified, 'R' renamed
	Type    byte   // 'F' file, '/' directory, '@' symlink, others special
	Path    string // old path for '-' and 'R', new path otherwise
	NewPath string // 'R' only
	// LinkDelta is an 'M' line's link-count change. With a negative one the
	// path may be the removed name itself (OpenZFS prints the object's
	// name in the older snapshot), gone from the newer.
	LinkDelta int
}

// FromDiff turns zfs diff output, whose paths start with the dataset's
// mountpoint, into Changes relative to it.
func FromDiff(mountpoint string, cs []zfsexec.DiffChange) ([]Change, error) {
	out := make([]Change, 0, len(cs))
	for _, c := range cs {
		p, err := relativeTo(mountpoint, c.Path)
		if err != nil {
			return nil, err
		}
		ch := Change{Kind: c.Change, Type: c.FileType, Path: p, LinkDelta: c.LinkDelta}
		if c.Change == 'R' {
			if ch.NewPath, err = relativeTo(mountpoint, c.NewPath); err != nil {
				return nil, err
			}
		}
		out = append(out, ch)
	}
	return out, nil
}

func relativeTo(mountpoint, p string) (string, error) {
	mp := strings.TrimSuffix(mountpoint, "/")
	if p != mp && p != mp+"/" && !strings.HasPrefix(p, mp+"/") {
		return "", fmt.Errorf("staging: zfs diff path %q is not under the mountpoint %q", p, mountpoint)
	}
	rel := strings.Trim(p[len(mp):], "/")
	for _, c := range strings.Split(rel, "/") {
		if c == ".." || c == "." || (c == "" && rel != "") {
			return "", fmt.Errorf("staging: zfs diff path %q has a bad component", p)
		}
	}
	return rel, nil
}

// step is one non-idempotent part of an incremental: a rename moved out of
// the way to a holding name, or moved in from it.
type step struct {
	out      bool
	path     string // staged path (old for out, new for in)
	holdName string
}

// plan orders an incremental's removals and renames. Removals run first
// (old paths, before anything moved). Renames go in two passes through a
// holding area, so that nested renames (a directory and a file in it) and
// swaps land right: out deepest old path first, in shallowest new first.
func plan(changes []Change) (removals []string, steps []step) {
	type mv struct{ from, to string }
	var mvs []mv
	for _, c := range changes {
		switch c.Kind {
		case '-':
			removals = append(removals, c.Path)
		case 'R':
			mvs = append(mvs, mv{c.Path, c.NewPath})
		}
	}
	sort.Strings(removals)
	sort.Slice(mvs, func(i, j int) bool { return mvs[i].from < mvs[j].from })
	depth := func(p string) int { return strings.Count(p, "/") }
	outs := make([]int, len(mvs))
	ins := make([]int, len(mvs))
	for i := range mvs {
		outs[i], ins[i] = i, i
	}
	sort.SliceStable(outs, func(a, b int) bool { return depth(mvs[outs[a]].from) > depth(mvs[outs[b]].from) })
	sort.SliceStable(ins, func(a, b int) bool { return depth(mvs[ins[a]].to) < depth(mvs[ins[b]].to) })
	for _, i := range outs {
		steps = append(steps, step{out: true, path: mvs[i].from, holdName: strconv.Itoa(i)})
	}
	for _, i := range ins {
		steps = append(steps, step{out: false, path: mvs[i].to, holdName: strconv.Itoa(i)})
	}
	return removals, steps
}

// Incremental applies the changes between snapshots from (which the
// staging copy must hold) and to (whose tree is the Source). A rerun with
// the same arguments after a crash resumes: removals and moves recorded in
// the journal are not repeated; file (re)encryption is idempotent.
func (s *Stager) Incremental(ctx context.Context, from, to string, changes []Change) (Report, error) {
	st, err := ReadState(s.Dir)
	if err != nil {
		return Report{}, err
	}
	if st.Names != s.namesID() {
		return Report{}, fmt.Errorf("%w (the copy records names key %q, this run %q; \"\" is names: keep): a full run restages everything under the new names", ErrNamesChanged, st.Names, s.namesID())
	}
	if st.Snapshot == to {
		return Report{Snapshot: to, Already: true}, nil
	}
	if st.Snapshot != from {
		return Report{}, fmt.Errorf("%w: it holds %q, the diff starts at %q (a full run restages everything)", ErrNotBase, st.Snapshot, from)
	}
	if err := s.prepare(); err != nil {
		return Report{}, err
	}
	j, err := s.readJournal()
	if err != nil {
		return Report{}, err
	}
	if j.Kind != "incremental" || j.From != from || j.To != to {
		os.RemoveAll(s.meta("moving"))
		if err := os.MkdirAll(s.meta("moving"), 0o700); err != nil {
			return Report{}, err
		}
		j = journal{Kind: "incremental", From: from, To: to}
		if err := s.writeJournal(j); err != nil {
			return Report{}, err
		}
	}
	rep := Report{Snapshot: to, Removed: j.Removed, Moved: j.Moved}
	removals, steps := plan(changes)
	// Step 1 is every removal (idempotent among themselves), then one step
	// per move.
	if j.Steps < 1 {
		for _, p := range removals {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if reserved(p) {
				continue
			}
			if _, err := os.Lstat(s.staged(p)); err != nil {
				continue
			}
			if err := os.RemoveAll(s.staged(p)); err != nil {
				return rep, fmt.Errorf("staging: remove %q: %w", p, err)
			}
			rep.Removed++
		}
		j.Steps, j.Removed = 1, rep.Removed
		if err := s.writeJournal(j); err != nil {
			return rep, err
		}
	}
	for i, stp := range steps {
		if i+1 < j.Steps {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		moved, err := s.move(stp)
		if err != nil {
			return rep, err
		}
		if moved && !stp.out {
			rep.Moved++
		}
		j.Steps, j.Moved = i+2, rep.Moved
		if err := s.writeJournal(j); err != nil {
			return rep, err
		}
		if s.AfterMove != nil {
			if err := s.AfterMove(i + 1); err != nil {
				return rep, err
			}
		}
	}

	// New paths: (re)stage files and symlinks, make directories, and make
	// added or modified directories list exactly the source's entries
	// (that catches hard-link names, which zfs diff reports only as a link
	// count change on the object).
	touched := map[string]Change{}
	for _, c := range changes {
		switch c.Kind {
		case '+', 'M':
			touched[c.Path] = c
		case 'R':
			touched[c.NewPath] = c
		}
	}
	paths := make([]string, 0, len(touched))
	for p := range touched {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	r := s.start(ctx)
	noSeq := func() int { return 0 }
	never := func(int, string) bool { return false }
	var walkErr error
	for _, p := range paths {
		if reserved(p) {
			r.skip(p, "name reserved for the staging copy's bookkeeping")
			continue
		}
		c := touched[p]
		fi, err := os.Lstat(s.src(p))
		if errors.Is(err, fs.ErrNotExist) && c.Kind == 'M' && c.LinkDelta < 0 {
			r.removeStaged(p) // a hard-link name removed
			continue
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w (zfs diff lists it but the snapshot lacks it: was the snapshot destroyed or unmounted?)", err)
			}
			r.fail(p, err)
			continue
		}
		switch kindOf(fi.Mode()) {
		case kindDir:
			created, err := r.ensureDir(p)
			if err != nil {
				r.fail(p, err)
				continue
			}
			if created || c.Kind == '+' || c.Kind == 'M' {
				walkErr = r.syncDir(p, created, noSeq, never)
			}
		case kindFile:
			walkErr = r.submit(p, 0, c.Kind == 'M' || c.Kind == 'R')
		default:
			r.skip(p, errSpecial.Error())
			r.removeStaged(p)
		}
		if walkErr != nil {
			break
		}
	}
	rep2, err := r.wait()
	if walkErr != nil {
		err = walkErr
	}
	rep2.Removed += rep.Removed
	rep2.Moved = rep.Moved
	rep2.Snapshot = to
	if err != nil {
		return rep2, err
	}
	// Other names of changed hard-linked files: find them by inode.
	if len(r.links) > 0 {
		r2 := s.start(ctx)
		walkErr = filepath.WalkDir(s.Source, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			ino := inodeOf(fi)
			rel, _ := filepath.Rel(s.Source, path)
			if r.links[ino] && !r.names[rel] && !reserved(rel) {
				return r2.submit(rel, 0, false)
			}
			return nil
		})
		rep3, err := r2.wait()
		if walkErr != nil && err == nil {
			err = walkErr
		}
		rep2.Files += rep3.Files
		rep2.Bytes += rep3.Bytes
		rep2.Failed = append(rep2.Failed, rep3.Failed...)
		if err != nil {
			return rep2, err
		}
	}
	return rep2, s.finish(to)
}

// move performs one rename step; it reports whether anything moved. Each
// step is safe to repeat: a step whose source is gone already happened.
func (s *Stager) move(stp step) (bool, error) {
	hold := s.meta(filepath.Join("moving", stp.holdName))
	src, dst := s.staged(stp.path), hold
	if !stp.out {
		src, dst = hold, s.staged(stp.path)
	}
	if _, err := os.Lstat(src); err != nil {
		return false, nil
	}
	if _, err := os.Lstat(dst); err == nil {
		if err := os.RemoveAll(dst); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return false, err
	}
	if err := os.Rename(src, dst); err != nil {
		return false, fmt.Errorf("staging: rename %q: %w", stp.path, err)
	}
	return true, nil
}
