package zfsexec_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"zcloud/internal/testenv"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// hostileArgs carry shell syntax that, if a shell interpreted it, would
// create a canary file in dir.
func hostileArgs(dir string) []string {
	c := func(n string) string { return filepath.Join(dir, "canary-"+n) }
	return []string{
		"a;touch " + c("semicolon"),
		"$(touch " + c("dollar") + ")",
		"`touch " + c("backtick") + "`",
		"'; touch " + c("quote") + "; '",
		`"; touch ` + c("dquote") + `; "`,
		"a\ntouch " + c("newline"),
		"a && touch " + c("and") + " || touch " + c("or"),
		"a | tee " + c("pipe"),
		"> " + c("redirect"),
		"-n",
		"*",
	}
}

// checkInert runs echo and touch with hostile arguments through r and
// proves each reached the program as one literal word and nothing ran.
func checkInert(t *testing.T, r zfsexec.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	args := hostileArgs(dir)

	// printf prints each argument on its own line (echo would eat "-n").
	res, err := r.Run(ctx, zfsexec.Cmd{Argv: append([]string{"printf", "[%s]\\n"}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, a := range args {
		fmt.Fprintf(&want, "[%s]\n", a)
	}
	if string(res.Stdout) != want.String() {
		t.Errorf("printf saw other arguments:\n got %q\nwant %q", res.Stdout, want.String())
	}

	// touch creates files whose names are the literal arguments.
	files := make([]string, 0, len(args))
	for _, a := range args {
		files = append(files, filepath.Join(dir, "f"+strings.ReplaceAll(a, "/", "_")))
	}
	if _, err := r.Run(ctx, zfsexec.Cmd{Argv: append([]string{"touch", "--"}, files...)}); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("literal file %q missing: %v", f, err)
		}
	}
	canaries, _ := filepath.Glob(filepath.Join(dir, "canary-*"))
	if len(canaries) != 0 {
		t.Fatalf("shell syntax was executed: %v", canaries)
	}
}

func TestLocalRunnerPassesHostileArgsInertly(t *testing.T) {
	checkInert(t, zfsexec.NewLocal(nil))
}

func needSSHD(t *testing.T) *testenv.SSHD {
	t.Helper()
	if testing.Short() {
		t.Skip("starts sshd (-short)")
	}
	if os.Getuid() != 0 {
		t.Skip("sshd tests run as root")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("no sshd")
	}
	return testenv.NewSSHD(t)
}

func TestSSHRunnerPassesHostileArgsInertly(t *testing.T) {
	s := needSSHD(t)
	checkInert(t, s.Runner(t))
}

// A property value full of shell syntax goes over SSH into real ZFS and
// comes back byte-identical; nothing it contains runs.
func TestSSHHostilePropertyValueOnZFS(t *testing.T) {
	s := needSSHD(t)
	if _, err := exec.LookPath("zpool"); err != nil {
		t.Skip("no zfs")
	}
	testenv.EnsureZFS(t)
	p := testenv.NewPool(t, "zs", 1, 128, "")
	r := s.Runner(t)
	ctx := context.Background()
	caps, err := zfsexec.DetectCapabilities(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	z := zfsexec.ZFS{R: r, Caps: caps}
	dir := t.TempDir()
	canary := filepath.Join(dir, "canary")
	value := "$(touch " + canary + ") `touch " + canary + "` '; touch " + canary + "; ' \"x\" && touch " + canary
	ds, _ := p.Root().Child("hostile")
	if err := z.Create(ctx, ds, zfsexec.CreateOptions{Props: zfsexec.MustProps("zcloud:note", value)}); err != nil {
		t.Fatal(err)
	}
	got, err := z.GetOne(ctx, ds, "zcloud:note")
	if err != nil {
		t.Fatal(err)
	}
	if got != value {
		t.Errorf("value changed in transit:\n got %q\nwant %q", got, value)
	}
	if _, err := os.Stat(canary); err == nil {
		t.Fatal("property value was executed")
	}
	// A hostile name never gets that far.
	if _, err := zfsname.ParseDataset(p.Root().String() + "/a;touch " + canary); !zfsname.IsInvalidName(err) {
		t.Fatalf("hostile name: %v", err)
	}
}

func TestSSHWrongHostKey(t *testing.T) {
	s := needSSHD(t)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(other)
	cfg := s.Config()
	cfg.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	r, err := zfsexec.NewSSH(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Run(context.Background(), zfsexec.Cmd{Argv: []string{"true"}})
	var hk *zfsexec.HostKeyMismatchError
	if !errors.As(err, &hk) {
		t.Fatalf("err = %v (%T), want HostKeyMismatchError", err, err)
	}
}

func TestSSHUnreachable(t *testing.T) {
	s := needSSHD(t)
	cfg := s.Config()
	cfg.Port = testenv.FreePort() // nothing listens there
	cfg.ConnectTimeout = 3 * time.Second
	r, err := zfsexec.NewSSH(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Run(context.Background(), zfsexec.Cmd{Argv: []string{"true"}})
	var u *zfsexec.UnreachableError
	if !errors.As(err, &u) {
		t.Fatalf("err = %v (%T), want UnreachableError", err, err)
	}
}

// Cancelling a long remote command kills the remote process, not just our
// end of the channel.
func TestSSHCancelKillsRemoteProcess(t *testing.T) {
	s := needSSHD(t)
	r := s.Runner(t)
	b := make([]byte, 3)
	rand.Read(b)
	// A fractional duration no other process uses is the marker pgrep looks for.
	marker := fmt.Sprintf("1000.%d%d%d", b[0], b[1], b[2])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, zfsexec.Cmd{Argv: []string{"sleep", marker}})
		done <- err
	}()
	pgrep := func() bool { return exec.Command("pgrep", "-f", "sleep "+marker).Run() == nil }
	deadline := time.Now().Add(10 * time.Second)
	for !pgrep() {
		if time.Now().After(deadline) {
			t.Fatal("remote sleep never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run err = %v, want context.Canceled", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	deadline = time.Now().Add(10 * time.Second)
	for pgrep() {
		if time.Now().After(deadline) {
			exec.Command("pkill", "-f", "sleep "+marker).Run() // our own marker only
			t.Fatal("remote sleep still running after cancel")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
