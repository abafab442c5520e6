package local_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
)

// The child side of TestKilledUploadTempFileIsSweptNeverListed: a process
// that uploads through the store and stalls midway until it is killed.
func TestHelperStalledUpload(t *testing.T) {
	dir := os.Getenv("ZCLOUD_TEST_STALLED_UPLOAD_DIR")
	if dir == "" {
		t.Skip("child process of TestKilledUploadTempFileIsSweptNeverListed")
	}
	s, err := local.New(dir, local.Options{PartSize: 64 << 10, Parallel: 2})
	if err != nil {
		t.Fatal(err)
	}
	// 512 KiB (8 parts written), then a read that never returns.
	r := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("z"), 512<<10)), blockForever{})
	s.Put(context.Background(), "streams/full-2", r, -1, objstore.PutOptions{})
	t.Fatal("the stalled upload returned")
}

type blockForever struct{}

func (blockForever) Read([]byte) (int, error) {
	time.Sleep(24 * time.Hour) // not select{}: the runtime would call that a deadlock
	return 0, io.EOF
}

// temps lists the temp files under dir (data and sidecar ones).
func temps(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".zcloud-tmp-") {
			out = append(out, path)
		}
		return nil
	})
	return out
}

func listKeys(t *testing.T, s *local.Store) []string {
	t.Helper()
	infos, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, i := range infos {
		keys = append(keys, i.Key)
	}
	return keys
}

func put(t *testing.T, s *local.Store, key string, data []byte) {
	t.Helper()
	if _, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func checkObject(t *testing.T, s *local.Store, key string, want []byte) {
	t.Helper()
	rc, err := s.Get(context.Background(), key, objstore.Range{})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, %v", key, len(got), err)
	}
}

// An upload killed midway (SIGKILL of the process writing through the
// store) leaves its temp file; it is never listed, survives while its
// writer lives and while it is younger than the grace, and is removed by
// the next open (or List) after that. Objects are never touched.
func TestKilledUploadTempFileIsSweptNeverListed(t *testing.T) {
	dir := t.TempDir()
	s, err := local.New(dir, local.Options{PartSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	full := bytes.Repeat([]byte("full-1 "), 50000)
	put(t, s, "streams/full-1", full)
	put(t, s, "streams/zcloud-tmp-lookalike", []byte("an object, not a temp file"))
	put(t, s, "manifest.json", []byte(`{"streams":1}`))
	want := []string{"manifest.json", "streams/full-1", "streams/zcloud-tmp-lookalike"}

	child := exec.Command(os.Args[0], "-test.run=^TestHelperStalledUpload$", "-test.count=1")
	child.Env = append(os.Environ(), "ZCLOUD_TEST_STALLED_UPLOAD_DIR="+dir)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	var tmp string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the child never wrote a temp file: %v", temps(t, dir))
		}
		if ts := temps(t, dir); len(ts) == 1 {
			if fi, err := os.Stat(ts[0]); err == nil && fi.Size() >= 256<<10 {
				tmp = ts[0]
				break
			}
		}
	}
	if filepath.Dir(tmp) != filepath.Join(dir, "streams") {
		t.Fatalf("temp file %s is not next to its key", tmp)
	}

	// The writer is alive: even with no grace at all, neither an open
	// nor a sweep nor a list in this (another) process removes it.
	eager, err := local.New(dir, local.Options{TempGrace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := eager.Sweep(); err != nil || len(removed) != 0 {
		t.Fatalf("sweep with the writer alive removed %v (%v)", removed, err)
	}
	if keys := listKeys(t, eager); !slices.Equal(keys, want) {
		t.Fatalf("list during the upload: %v", keys)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("in-flight temp file removed: %v", err)
	}

	// SIGKILL the writer midway.
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("the killed upload left no temp file (%v): the test proves nothing", err)
	}

	// Within the default grace it stays (never listed).
	s2, err := local.New(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if keys := listKeys(t, s2); !slices.Equal(keys, want) {
		t.Fatalf("list after the kill: %v", keys)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("a temp file younger than the grace was removed: %v", err)
	}
	if _, err := s2.Head(context.Background(), "streams/full-2"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("the killed upload's key: %v", err)
	}

	// Once older than the grace, opening the store removes it.
	old := time.Now().Add(-local.DefaultTempGrace - time.Minute)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	s3, err := local.New(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temp file still there after open: %v", err)
	}
	if ts := temps(t, dir); len(ts) != 0 {
		t.Fatalf("temp files left: %v", ts)
	}
	if keys := listKeys(t, s3); !slices.Equal(keys, want) {
		t.Fatalf("list after the sweep: %v", keys)
	}
	checkObject(t, s3, "streams/full-1", full)
	checkObject(t, s3, "streams/zcloud-tmp-lookalike", []byte("an object, not a temp file"))
	checkObject(t, s3, "manifest.json", []byte(`{"streams":1}`))
	// The retried upload to the same key goes through.
	put(t, s3, "streams/full-2", []byte("retried"))
	checkObject(t, s3, "streams/full-2", []byte("retried"))
}

// List removes stale temp files it walks past (a long-lived Store, opened
// before the upload died) and never returns them; a sidecar temp file of
// an earlier version (<key>.json.tmp<hex>) is swept too.
func TestListSweepsStaleTempFilesItWalksPast(t *testing.T) {
	dir := t.TempDir()
	s, err := local.New(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "a/b", []byte("b"))
	old := time.Now().Add(-time.Hour)
	stale := filepath.Join(dir, "a", ".zcloud-tmp-123456")
	fresh := filepath.Join(dir, "a", ".zcloud-tmp-654321")
	legacy := filepath.Join(dir, ".zcloud-meta", "a", "b.json.tmp0123456789ab")
	sidecar := filepath.Join(dir, ".zcloud-meta", "a", "b.json")
	for _, p := range []string{stale, fresh, legacy} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{stale, legacy} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if keys := listKeys(t, s); !slices.Equal(keys, []string{"a/b"}) {
		t.Fatalf("list: %v", keys)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temp after list: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("fresh temp removed: %v", err)
	}
	removed, err := s.Sweep()
	if err != nil || len(removed) != 1 || removed[0] != legacy {
		t.Fatalf("sweep removed %v (%v), want the legacy sidecar temp", removed, err)
	}
	if _, err := os.Stat(sidecar); err != nil {
		t.Fatalf("sidecar removed: %v", err)
	}
	checkObject(t, s, "a/b", []byte("b"))
}

// A Put in progress in this very process is never swept, even with no
// grace, by another Store on the same directory.
func TestSweepSparesAnUploadInThisProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := local.New(dir, local.Options{PartSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Put(context.Background(), "k", pr, -1, objstore.PutOptions{})
		done <- err
	}()
	data := bytes.Repeat([]byte("x"), 256<<10)
	if _, err := pw.Write(data[:128<<10]); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(temps(t, dir)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no temp file")
		}
	}
	eager, err := local.New(dir, local.Options{TempGrace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := eager.Sweep(); err != nil || len(removed) != 0 {
		t.Fatalf("sweep removed %v (%v)", removed, err)
	}
	if _, err := pw.Write(data[128<<10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkObject(t, s, "k", data)
	if ts := temps(t, dir); len(ts) != 0 {
		t.Fatalf("temp files after a finished put: %v", ts)
	}
}
