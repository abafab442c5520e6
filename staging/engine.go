package staging

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"filippo.io/age"
)

// Options tune a Stager.
type Options struct {
	// Recipients are the age public keys every staged file is encrypted
	// to. Their private keys are not needed (and should not be) here.
	Recipients []age.Recipient
	// Names, when set, encrypts every staged name (names.go); nil keeps
	// the source's names.
	Names *NameCipher
	// Parallel is how many files are encrypted at once (default: CPUs).
	Parallel int
	// NoFsync skips fsync before renames. ZFS commits its transaction
	// groups in order, so a rename never reaches disk before the data
	// written ahead of it: the staging activity, whose target is always a
	// ZFS dataset, sets it. Other file systems need the fsync.
	NoFsync bool
	// Read, when set, counts the source bytes read so far (live progress,
	// large files included).
	Read *atomic.Int64
	// AfterFile, when set, is called after each file this run staged, with
	// the number staged so far; an error stops the run there. Tests use it
	// as a gate that kills the run in the middle.
	AfterFile func(n int) error
	// AfterMove, likewise, is called after each rename step of an
	// incremental run.
	AfterMove func(n int) error
}

// Stager stages one source tree into one staging directory.
type Stager struct {
	Source string // root of the source snapshot (.zfs/snapshot/NAME or a mount)
	Dir    string // root of the staging copy
	Options
}

// Problem is one entry a run could not stage, and why.
type Problem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Report says what a run did.
type Report struct {
	Snapshot string    `json:"snapshot"`
	Already  bool      `json:"already,omitempty"` // the snapshot was staged before
	Files    int       `json:"files"`             // regular files encrypted
	Symlinks int       `json:"symlinks"`
	Dirs     int       `json:"dirs"`    // directories created
	Removed  int       `json:"removed"` // staged entries removed
	Moved    int       `json:"moved"`   // staged entries renamed (incremental)
	Bytes    int64     `json:"bytes"`   // source bytes encrypted
	Skipped  []Problem `json:"skipped,omitempty"`
	Failed   []Problem `json:"failed,omitempty"`
}

// FailedError: the run staged everything it could, but these entries
// failed (unreadable, vanished). The staging copy keeps its previous state
// marker, so the next run retries them; nothing is lost.
type FailedError struct{ Failed []Problem }

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "staging: %d entries could not be staged (the run is incomplete and will be retried):", len(e.Failed))
	for i, p := range e.Failed {
		if i == 20 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Failed)-20)
			break
		}
		fmt.Fprintf(&b, "\n  %q: %s", p.Path, p.Reason)
	}
	return b.String()
}

// ErrNotBase: the staging copy does not hold the incremental's base.
var ErrNotBase = errors.New("staging: the staging copy does not hold the diff's base snapshot")

func (s *Stager) src(rel string) string    { return filepath.Join(s.Source, rel) }
func (s *Stager) staged(rel string) string { return filepath.Join(s.Dir, s.stagedRel(rel)) }

// reserved reports whether rel collides with the staging copy's own MetaDir.
func reserved(rel string) bool {
	return rel == MetaDir || strings.HasPrefix(rel, MetaDir+"/")
}

// run is one run's shared state: the encryption pool and the report.
type run struct {
	s      *Stager
	ctx    context.Context
	cancel context.CancelCauseFunc
	jobs   chan job
	wg     sync.WaitGroup

	mu     sync.Mutex
	rep    Report
	staged int
	links  map[uint64]bool // inodes with more than one name staged this run
	names  map[string]bool // files staged this run
	queued map[string]bool // entries submitted this run (each once)
	done   func(seq int)   // full runs: a file finished (for the journal)
}

type job struct {
	rel string
	seq int
	// linkScan: a changed file whose other hard-link names the diff does
	// not list (zfs diff names an object once).
	linkScan bool
}

func (s *Stager) start(ctx context.Context) *run {
	ctx, cancel := context.WithCancelCause(ctx)
	r := &run{s: s, ctx: ctx, cancel: cancel, jobs: make(chan job), links: map[uint64]bool{}, names: map[string]bool{}, queued: map[string]bool{}}
	n := s.Parallel
	if n <= 0 {
		n = runtime.NumCPU()
	}
	for i := 0; i < n; i++ {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for j := range r.jobs {
				if r.ctx.Err() != nil {
					continue
				}
				r.stageOne(j)
			}
		}()
	}
	return r
}

// submit queues a file or symlink for staging, once per run.
func (r *run) submit(rel string, seq int, linkScan bool) error {
	r.mu.Lock()
	dup := r.queued[rel]
	r.queued[rel] = true
	r.mu.Unlock()
	if dup {
		return nil
	}
	select {
	case r.jobs <- job{rel, seq, linkScan}:
		return nil
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	}
}

// wait drains the pool and returns the run's outcome.
func (r *run) wait() (Report, error) {
	close(r.jobs)
	r.wg.Wait()
	rep := r.rep
	sort.Slice(rep.Failed, func(i, j int) bool { return rep.Failed[i].Path < rep.Failed[j].Path })
	sort.Slice(rep.Skipped, func(i, j int) bool { return rep.Skipped[i].Path < rep.Skipped[j].Path })
	if err := context.Cause(r.ctx); err != nil {
		return rep, err
	}
	if len(rep.Failed) > 0 {
		return rep, &FailedError{rep.Failed}
	}
	return rep, nil
}

func (r *run) fail(rel string, err error) {
	reason := err.Error()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason = "vanished from the source while staging: " + reason
	case errors.Is(err, fs.ErrPermission):
		reason = "unreadable: " + reason
	}
	r.mu.Lock()
	r.rep.Failed = append(r.rep.Failed, Problem{rel, reason})
	r.mu.Unlock()
}

func (r *run) skip(rel, reason string) {
	r.mu.Lock()
	r.rep.Skipped = append(r.rep.Skipped, Problem{rel, reason})
	r.mu.Unlock()
}

func (r *run) count(f func(*Report)) {
	r.mu.Lock()
	f(&r.rep)
	r.mu.Unlock()
}

// stageOne encrypts the source entry rel (a regular file or a symlink) to
// its staged path: into a temp file first, renamed into place once whole.
func (r *run) stageOne(j job) {
	n, nlink, ino, isLink, err := r.s.stageEntry(j.rel)
	if err != nil {
		if errors.Is(err, errSpecial) {
			r.skip(j.rel, err.Error())
			r.removeStaged(j.rel)
		} else {
			r.fail(j.rel, err)
		}
		return
	}
	r.mu.Lock()
	if isLink {
		r.rep.Symlinks++
	} else {
		r.rep.Files++
		r.rep.Bytes += n
		r.names[j.rel] = true
		if nlink > 1 && j.linkScan {
			r.links[ino] = true
		}
	}
	r.staged++
	count := r.staged
	done := r.done
	r.mu.Unlock()
	if done != nil {
		done(j.seq)
	}
	if r.s.AfterFile != nil {
		if err := r.s.AfterFile(count); err != nil {
			r.cancel(err)
		}
	}
}

var errSpecial = errors.New("special file (device, fifo or socket): not staged")

// stageEntry writes the staged copy of rel and returns the bytes read, the
// link count and inode of a regular file, and whether it was a symlink.
func (s *Stager) stageEntry(rel string) (n int64, nlink uint64, ino uint64, isLink bool, err error) {
	if err := s.checkName(rel); err != nil {
		return 0, 0, 0, false, err
	}
	p := s.src(rel)
	fi, err := os.Lstat(p)
	if err != nil {
		return 0, 0, 0, false, err
	}
	var h Header
	var f *os.File
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return 0, 0, 0, false, err
		}
		h = Header{Type: TypeSymlink, Mode: uint32(fi.Mode().Perm()), MtimeNs: fi.ModTime().UnixNano(), Target: target}
		isLink = true
	case fi.Mode().IsRegular():
		f, err = os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return 0, 0, 0, false, err
		}
		defer f.Close()
		if fi, err = f.Stat(); err != nil {
			return 0, 0, 0, false, err
		}
		if !fi.Mode().IsRegular() {
			return 0, 0, 0, false, fmt.Errorf("%w: replaced while staging", fs.ErrNotExist)
		}
		h = Header{Type: TypeFile, Mode: unixPerm(fi.Mode()), MtimeNs: fi.ModTime().UnixNano(), Size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			nlink, ino = uint64(st.Nlink), st.Ino
		}
	case fi.IsDir():
		return 0, 0, 0, false, fmt.Errorf("is a directory")
	default:
		return 0, 0, 0, false, errSpecial
	}
	sum := sha256.Sum256([]byte(rel))
	tmp := s.meta(filepath.Join("tmp", hex.EncodeToString(sum[:16])))
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, 0, 0, false, fmt.Errorf("staging temp file: %w", err)
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	var content io.Reader
	if f != nil {
		content = bufio.NewReaderSize(f, 256<<10)
		if s.Read != nil {
			content = countingReader{content, s.Read}
		}
	}
	err = writeStaged(bw, s.Recipients, h, content)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && !s.NoFsync {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.place(tmp, rel)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, 0, 0, false, err
	}
	return h.Size, nlink, ino, isLink, nil
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// place renames a finished temp file to rel's staged path, replacing
// whatever is there (a directory that the source replaced by a file too).
func (s *Stager) place(tmp, rel string) error {
	dst := s.staged(rel)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dst)
}

// removeStaged removes rel's staged entry (a whole directory too).
func (r *run) removeStaged(rel string) { r.removeAt(rel, r.s.staged(rel)) }

// removeAt removes the staged entry at p, reported as rel.
func (r *run) removeAt(rel, p string) {
	if _, err := os.Lstat(p); err != nil {
		return
	}
	if err := os.RemoveAll(p); err != nil {
		r.fail(rel, fmt.Errorf("remove staged copy: %w", err))
		return
	}
	r.count(func(rep *Report) { rep.Removed++ })
}

// ensureDir makes rel's staged directory, replacing a staged file there.
func (r *run) ensureDir(rel string) (created bool, err error) {
	if err := r.s.checkName(rel); err != nil {
		return false, err
	}
	p := r.s.staged(rel)
	fi, err := os.Lstat(p)
	if err == nil && fi.IsDir() {
		return false, nil
	}
	if err == nil {
		if err := os.Remove(p); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(p, 0o700); err != nil {
		return false, err
	}
	r.count(func(rep *Report) { rep.Dirs++ })
	return true, nil
}

// entryKind classifies a source directory entry.
type entryKind int

const (
	kindFile entryKind = iota // regular file or symlink: one staged file
	kindDir
	kindSpecial
)

func kindOf(m fs.FileMode) entryKind {
	switch {
	case m.IsDir():
		return kindDir
	case m.IsRegular(), m&fs.ModeSymlink != 0:
		return kindFile
	}
	return kindSpecial
}

// syncDir makes rel's staged directory list exactly the source's entries:
// extras are removed, missing entries staged (whole subtrees for missing
// directories); with deep set, existing subdirectories are synced too and
// every file is (re)staged unless skip says it is done. Entries present on
// both sides are otherwise left alone (their changes come from the diff).
func (r *run) syncDir(rel string, deep bool, next func() int, skip func(seq int, rel string) bool) error {
	if err := r.ctx.Err(); err != nil {
		return context.Cause(r.ctx)
	}
	ents, err := os.ReadDir(r.s.src(rel))
	if err != nil {
		r.fail(rel, err)
		return nil
	}
	if _, err := r.ensureDir(rel); err != nil {
		r.fail(rel, err)
		return nil
	}
	// want: the source's entries by their staged names.
	want := map[string]entryKind{}
	for _, e := range ents {
		child := filepath.Join(rel, e.Name())
		if reserved(child) {
			r.skip(child, "name reserved for the staging copy's bookkeeping")
			continue
		}
		want[r.s.stagedName(e.Name())] = kindOf(e.Type())
	}
	stagedDir := r.s.staged(rel)
	if have, err := os.ReadDir(stagedDir); err == nil {
		for _, e := range have {
			if reserved(filepath.Join(rel, e.Name())) {
				continue
			}
			k, ok := want[e.Name()]
			if !ok || k == kindSpecial || (k == kindDir) != e.IsDir() {
				r.removeAt(filepath.Join(rel, r.s.displayName(e.Name())), filepath.Join(stagedDir, e.Name()))
			}
		}
	}
	for _, e := range ents {
		child := filepath.Join(rel, e.Name())
		if reserved(child) {
			continue
		}
		switch k := kindOf(e.Type()); k {
		case kindSpecial:
			r.skip(child, errSpecial.Error())
		case kindDir:
			created, err := r.ensureDir(child)
			if err != nil {
				r.fail(child, err)
				continue
			}
			if deep || created {
				if err := r.syncDir(child, true, next, skip); err != nil {
					return err
				}
			}
		case kindFile:
			seq := next()
			if _, err := os.Lstat(r.s.staged(child)); err == nil && (!deep || skip(seq, child)) {
				if r.done != nil {
					r.done(seq)
				}
				continue
			}
			if err := r.submit(child, seq, false); err != nil {
				return err
			}
		}
	}
	return nil
}
