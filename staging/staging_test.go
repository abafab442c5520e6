package staging

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"filippo.io/age"

	"zcloud/zfsexec"
)

// mount is the mountpoint the synthetic zfs diff lines carry.
const mount = "/tank/src"

func keys(t *testing.T) (age.Recipient, age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient(), id
}

type fixture struct {
	t   *testing.T
	src string
	st  *Stager
	id  age.Identity
}

func newFixture(t *testing.T) *fixture {
	rcpt, id := keys(t)
	src := filepath.Join(t.TempDir(), "src")
	dir := filepath.Join(t.TempDir(), "staging")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, src: src, id: id, st: &Stager{Source: src, Dir: dir, Options: Options{Recipients: []age.Recipient{rcpt}, Parallel: 1}}}
}

func (f *fixture) write(rel string, data []byte) {
	f.t.Helper()
	p := filepath.Join(f.src, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) do(fn func() error) {
	f.t.Helper()
	if err := fn(); err != nil {
		f.t.Fatal(err)
	}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// listing is what a user compares: every entry's path, type, mode, size
// and SHA-256 (files) or target (symlinks). Special files are left out
// (they are not staged), so are hard-link counts (names restore as files).
func listing(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == MetaDir {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			lines = append(lines, fmt.Sprintf("%q dir", rel))
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("%q symlink -> %q", rel, tg))
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%q file %o %d %x", rel, fi.Mode().Perm(), fi.Size(), sha256.Sum256(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// checkCopy restores everything and compares it with the source, and runs
// Verify in full.
func (f *fixture) checkCopy() {
	f.t.Helper()
	out := filepath.Join(f.t.TempDir(), "restored")
	ctx := context.Background()
	if _, err := Restore(ctx, f.st.Dir, "", out, []age.Identity{f.id}); err != nil {
		f.t.Fatal(err)
	}
	if got, want := listing(f.t, out), listing(f.t, f.src); got != want {
		f.t.Fatalf("restored copy differs from the source\nrestored:\n%s\nsource:\n%s", got, want)
	}
	if rep, err := Verify(ctx, f.st.Dir, f.src, []age.Identity{f.id}, VerifyOptions{}); err != nil {
		f.t.Fatalf("verify: %v (%+v)", err, rep)
	}
}

// escape writes a path as zfs diff does: bytes other than printable ASCII
// (space and backslash included) as \NNNN octal.
func escape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c > ' ' && c != '\\' && c < 0o177 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "\\%04o", c)
		}
	}
	return b.String()
}

// diff builds `zfs diff -FH` output from "K T path [newpath|(±n)]" specs
// (paths relative to the mountpoint, "|" separating fields) and parses it
// with zfsexec's parser, as the activity does.
func diff(t *testing.T, specs ...string) []Change {
	t.Helper()
	var out strings.Builder
	for _, s := range specs {
		f := strings.Split(s, "|")
		line := f[0] + "\t" + f[1] + "\t" + escape(mount+"/"+f[2])
		if len(f) == 4 {
			if strings.HasPrefix(f[3], "(") {
				line += "\t" + f[3]
			} else {
				line += "\t" + escape(mount+"/"+f[3])
			}
		}
		out.WriteString(line + "\n")
	}
	cs, err := zfsexec.ParseDiff([]byte(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := FromDiff(mount, cs)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

const oddNewline = "new\nline"

// first builds the first snapshot's tree.
func (f *fixture) first() {
	f.write("a/f1", random(300<<10))
	f.write("a/b/c/deep", []byte("deep\n"))
	f.write("empty", nil)
	f.write("with space", []byte("s"))
	f.write("café ünï", []byte("u"))
	f.write(oddNewline, []byte("n"))
	f.write(`back\slash`, []byte("b"))
	f.write("x", []byte("x becomes a directory"))
	f.write("swap1", []byte("one"))
	f.write("swap2", []byte("two"))
	f.write("gone", []byte("gone"))
	f.write("mod", []byte("before"))
	f.write("h1", []byte("linked"))
	f.write("exec", []byte("#!/bin/sh\n"))
	f.do(func() error { return os.Chmod(filepath.Join(f.src, "exec"), 0o750) })
	f.do(func() error { return os.MkdirAll(filepath.Join(f.src, "sub"), 0o755) })
	f.do(func() error { return os.Link(filepath.Join(f.src, "h1"), filepath.Join(f.src, "sub/h2")) })
	f.do(func() error { return os.Symlink("a/f1", filepath.Join(f.src, "ln")) })
	f.do(func() error { return os.Symlink("nowhere", filepath.Join(f.src, "dangle")) })
	f.do(func() error { return syscall.Mkfifo(filepath.Join(f.src, "pipe"), 0o644) })
	// Sparse: 8 MiB with 4 KiB of data in the middle.
	sp, err := os.Create(filepath.Join(f.src, "sparse"))
	f.do(func() error { return err })
	sp.WriteAt(random(4096), 4<<20)
	sp.Truncate(8 << 20)
	sp.Close()
}

func TestFullStageAndRestore(t *testing.T) {
	f := newFixture(t)
	f.first()
	rep, err := f.st.Full(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Path != "pipe" {
		t.Errorf("skipped %+v, want the fifo reported", rep.Skipped)
	}
	if rep.Symlinks != 2 || rep.Files != 16 {
		t.Errorf("report %+v", rep)
	}
	f.checkCopy()

	// Staged files are age files that do not contain the plaintext.
	src, _ := os.ReadFile(filepath.Join(f.src, "a/f1"))
	stg, _ := os.ReadFile(filepath.Join(f.st.Dir, "a/f1"))
	if !bytes.HasPrefix(stg, []byte("age-encryption.org/v1\n")) || bytes.Contains(stg, src[:64]) {
		t.Fatal("staged file is not an age file or holds plaintext")
	}
	if st, _ := ReadState(f.st.Dir); st.Snapshot != "s1" {
		t.Fatalf("state %+v", st)
	}
	// The sparse file restores sparse.
	out := filepath.Join(t.TempDir(), "one")
	if _, err := Restore(context.Background(), f.st.Dir, "sparse", out, []age.Identity{f.id}); err != nil {
		t.Fatal(err)
	}
	var sst syscall.Stat_t
	syscall.Stat(out, &sst)
	if sst.Blocks*512 >= 8<<20 {
		t.Errorf("restored sparse file uses %d bytes of disk", sst.Blocks*512)
	}
	// A second full of the same snapshot does nothing.
	if rep, err := f.st.Full(context.Background(), "s1"); err != nil || !rep.Already {
		t.Fatalf("rerun: %+v %v", rep, err)
	}
	// A wrong key is a clear error.
	_, other := keys(t)
	if _, err := Restore(context.Background(), f.st.Dir, "", t.TempDir(), []age.Identity{other}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
}

// second applies a change set covering every kind of diff to the source
// and returns the zfs diff that OpenZFS prints for it.
func (f *fixture) second() []Change {
	p := func(r string) string { return filepath.Join(f.src, r) }
	// A directory renamed with its contents; in it a file modified and one
	// renamed (zfs diff shows changed children of a renamed directory as
	// renames).
	f.do(func() error { return os.Rename(p("a"), p("b")) })
	f.write("b/f1", random(100<<10))
	f.do(func() error { return os.Rename(p("b/b/c/deep"), p("b/b/c/deeper")) })
	// A file replaced by a directory.
	f.do(func() error { return os.Remove(p("x")) })
	f.write("x/inner", []byte("inside"))
	// The second name of a hard link removed.
	f.do(func() error { return os.Remove(p("sub/h2")) })
	// A file modified in place.
	f.do(func() error { return os.WriteFile(p("mod"), []byte("after, longer"), 0o644) })
	// Two files swapped.
	f.do(func() error { return os.Rename(p("swap1"), p("tmp")) })
	f.do(func() error { return os.Rename(p("swap2"), p("swap1")) })
	f.do(func() error { return os.Rename(p("tmp"), p("swap2")) })
	// Removed, added with awkward names, a symlink re-pointed.
	f.do(func() error { return os.Remove(p("gone")) })
	f.write("tab\there \\ and\nnewline", []byte("odd"))
	f.write("new dir/ünï", []byte("deep new"))
	f.do(func() error { return os.Remove(p("ln")) })
	f.do(func() error { return os.Symlink("b/f1", p("ln")) })
	return diff(f.t,
		"M|/|",
		"R|/|a|b",
		"R|F|a/f1|b/f1",
		"R|/|a/b/c|b/b/c",
		"R|F|a/b/c/deep|b/b/c/deeper",
		"-|F|x",
		"+|/|x",
		"+|F|x/inner",
		"M|F|sub/h2|(-1)", // as OpenZFS 2.3 prints it: the removed name
		"M|/|sub",
		"M|F|mod",
		"R|F|swap1|swap2",
		"R|F|swap2|swap1",
		"-|F|gone",
		"+|F|tab\there \\ and\nnewline",
		"+|/|new dir",
		"+|F|new dir/ünï",
		"-|@|ln",
		"+|@|ln",
	)
}

func TestIncrementalEveryKind(t *testing.T) { forNames(t, incrementalEveryKind) }

func incrementalEveryKind(t *testing.T, f *fixture) {
	f.first()
	ctx := context.Background()
	if _, err := f.st.Full(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	changes := f.second()
	rep, err := f.st.Incremental(ctx, "s1", "s2", changes)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	if rep.Moved != 6 {
		t.Errorf("moved %d staged entries, want 6 (a directory moves with its contents)", rep.Moved)
	}
	f.checkCopy()
	if st, _ := ReadState(f.st.Dir); st.Snapshot != "s2" {
		t.Fatalf("state %+v", st)
	}
	// Rerun: nothing to do. Another base: refused.
	if rep, err := f.st.Incremental(ctx, "s1", "s2", changes); err != nil || !rep.Already {
		t.Fatalf("rerun %+v %v", rep, err)
	}
	if _, err := f.st.Incremental(ctx, "s1", "s3", changes); !errors.Is(err, ErrNotBase) {
		t.Fatalf("wrong base: %v", err)
	}
}

// zfs diff names a modified object once, by one of its names: the other
// names of a hard-linked file must be restaged too.
func TestIncrementalHardLinkModified(t *testing.T) {
	f := newFixture(t)
	f.write("h1", []byte("v1"))
	f.write("other/h2", nil)
	f.do(func() error { return os.Remove(filepath.Join(f.src, "other/h2")) })
	f.do(func() error { return os.Link(filepath.Join(f.src, "h1"), filepath.Join(f.src, "other/h2")) })
	f.write("other/plain", []byte("p"))
	ctx := context.Background()
	if _, err := f.st.Full(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	h, err := os.OpenFile(filepath.Join(f.src, "h1"), os.O_WRONLY, 0)
	f.do(func() error { return err })
	h.WriteAt([]byte("v2 written in place"), 0)
	h.Close()
	// A hard link added to the same file in another directory.
	f.do(func() error { return os.Link(filepath.Join(f.src, "h1"), filepath.Join(f.src, "third")) })
	if _, err := f.st.Incremental(ctx, "s1", "s2", diff(t, "M|F|h1|(+1)", "M|/|")); err != nil {
		t.Fatal(err)
	}
	f.checkCopy()
}

var errKilled = errors.New("killed by the test gate")

// killAt is a gate that stops a run at its n-th step.
func killAt(n int) func(int) error {
	return func(i int) error {
		if i == n {
			return errKilled
		}
		return nil
	}
}

func TestFullKilledTwiceConverges(t *testing.T) { forNames(t, fullKilledTwice) }

func fullKilledTwice(t *testing.T, f *fixture) {
	f.first()
	for i := 0; i < 600; i++ { // more than a journal batch
		f.write(fmt.Sprintf("many/%03d", i), []byte(fmt.Sprint(i)))
	}
	ctx := context.Background()
	f.st.AfterFile = killAt(300)
	if _, err := f.st.Full(ctx, "s1"); !errors.Is(err, errKilled) {
		t.Fatalf("first run: %v", err)
	}
	f.st.AfterFile = killAt(200)
	if _, err := f.st.Full(ctx, "s1"); !errors.Is(err, errKilled) {
		t.Fatalf("second run: %v", err)
	}
	if st, _ := ReadState(f.st.Dir); st.Snapshot != "" {
		t.Fatalf("an interrupted run recorded %+v", st)
	}
	f.st.AfterFile = nil
	rep, err := f.st.Full(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	// The journal let the last run skip what the first two finished.
	if rep.Files+rep.Symlinks > 618-256 {
		t.Errorf("the third run restaged %d files: the journal was not used", rep.Files+rep.Symlinks)
	}
	f.checkCopy()
}

func TestIncrementalKilledTwiceConverges(t *testing.T) { forNames(t, incrementalKilledTwice) }

func incrementalKilledTwice(t *testing.T, f *fixture) {
	f.first()
	ctx := context.Background()
	if _, err := f.st.Full(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	changes := f.second()
	// Killed among the renames, then among the files.
	f.st.AfterMove = killAt(3)
	if _, err := f.st.Incremental(ctx, "s1", "s2", changes); !errors.Is(err, errKilled) {
		t.Fatalf("first run: %v", err)
	}
	f.st.AfterMove = nil
	f.st.AfterFile = killAt(2)
	if _, err := f.st.Incremental(ctx, "s1", "s2", changes); !errors.Is(err, errKilled) {
		t.Fatalf("second run: %v", err)
	}
	if st, _ := ReadState(f.st.Dir); st.Snapshot != "s1" {
		t.Fatalf("an interrupted run recorded %+v", st)
	}
	f.st.AfterFile = nil
	rep, err := f.st.Incremental(ctx, "s1", "s2", changes)
	if err != nil {
		t.Fatal(err)
	}
	// The last attempt's report covers the moves the killed ones made.
	if rep.Moved != 6 || rep.Removed < 2 {
		t.Errorf("report after two kills: moved %d removed %d, want 6 and at least 2", rep.Moved, rep.Removed)
	}
	f.checkCopy()
}

// A file listed by the diff but gone from the snapshot: the run stages
// everything else, fails with the list, keeps its base, and a rerun once
// the file is readable converges.
func TestVanishedFileReportedAndRetried(t *testing.T) {
	f := newFixture(t)
	f.write("keep", []byte("k"))
	ctx := context.Background()
	if _, err := f.st.Full(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	f.write("added", []byte("a"))
	changes := diff(t, "+|F|added", "+|F|ghost", "M|/|")
	_, err := f.st.Incremental(ctx, "s1", "s2", changes)
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Failed) != 1 || fe.Failed[0].Path != "ghost" || !strings.Contains(err.Error(), "vanished") {
		t.Fatalf("want a FailedError naming ghost, got %v", err)
	}
	if st, _ := ReadState(f.st.Dir); st.Snapshot != "s1" {
		t.Fatalf("a failed run advanced the state: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(f.st.Dir, "added")); err != nil {
		t.Fatal("the readable file was not staged")
	}
	f.write("ghost", []byte("back"))
	if _, err := f.st.Incremental(ctx, "s1", "s2", changes); err != nil {
		t.Fatal(err)
	}
	f.checkCopy()
}

// Verify finds a staged file that does not match the source.
func TestVerifyFindsDifferences(t *testing.T) {
	f := newFixture(t)
	f.write("a", []byte("a"))
	f.write("b", []byte("b"))
	ctx := context.Background()
	if _, err := f.st.Full(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	f.write("a", []byte("changed behind staging's back"))
	f.write("c", []byte("new"))
	rep, err := Verify(ctx, f.st.Dir, f.src, []age.Identity{f.id}, VerifyOptions{})
	if err == nil || len(rep.Mismatches) != 2 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	// A sample of half decrypts fewer files (deterministically).
	f.write("a", []byte("a"))
	os.Remove(filepath.Join(f.src, "c"))
	for i := 0; i < 40; i++ {
		f.write(fmt.Sprintf("m/%d", i), []byte("x"))
	}
	if _, err := f.st.Full(ctx, "s2"); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(ctx, f.st.Dir, f.src, []age.Identity{f.id}, VerifyOptions{Sample: 0.5})
	if err != nil || rep.Decrypted == 0 || rep.Decrypted >= 42 || rep.Entries != 43 {
		t.Fatalf("sampled verify: %v %+v", err, rep)
	}
}

// Memory stays bounded whatever the file size: the copy streams.
func TestLargeFileStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB")
	}
	f := newFixture(t)
	big, err := os.Create(filepath.Join(f.src, "big"))
	f.do(func() error { return err })
	chunk := random(1 << 20)
	for i := 0; i < 64; i++ {
		big.Write(chunk)
	}
	big.Close()
	var before, after runtimeMem
	before.read()
	if _, err := f.st.Full(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	after.read()
	if grew := int64(after.total) - int64(before.total); grew > 32<<20 {
		t.Errorf("staging a 64 MiB file allocated %d MiB", grew>>20)
	}
	f.checkCopy()
}
