package staging

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// An unreadable file fails the run with its path and "unreadable" after
// everything else is staged; the state does not advance; once the file is
// readable a rerun converges. Root reads every file, so as root the test
// runs itself again as nobody (setpriv, util-linux).
func TestUnreadableFileReportedAndRetried(t *testing.T) {
	if os.Geteuid() == 0 {
		asNobody(t, "TestUnreadableFileReportedAndRetried")
		return
	}
	f := newFixture(t)
	f.write("ok", []byte("fine"))
	f.write("dir/secret", []byte("s"))
	secret := filepath.Join(f.src, "dir/secret")
	f.do(func() error { return os.Chmod(secret, 0) })
	ctx := context.Background()
	_, err := f.st.Full(ctx, "s1")
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Failed) != 1 || fe.Failed[0].Path != "dir/secret" || !strings.Contains(fe.Failed[0].Reason, "unreadable") {
		t.Fatalf("want a FailedError naming dir/secret as unreadable, got %v", err)
	}
	if st, _ := ReadState(f.st.Dir); st.Snapshot != "" {
		t.Fatalf("a failed run advanced the state: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(f.st.Dir, "ok")); err != nil {
		t.Fatal("the readable file was not staged")
	}
	f.do(func() error { return os.Chmod(secret, 0o644) })
	if _, err := f.st.Full(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	f.checkCopy()
}

// asNobody runs the test name of this test binary as user nobody and
// fails if it does not pass there.
func asNobody(t *testing.T, name string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "zcloud-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "staging.test")
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR=/tmp")
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "--- PASS: "+name) {
		t.Fatalf("as nobody: %v\n%s", err, b)
	}
}
