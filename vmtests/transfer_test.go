package vmtests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"zcloud/transfer"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// The encrypted parallel transfer into a real OpenZFS 2.3 `zfs receive`,
// which grows its stdin pipe (libzfs) while the receiver vmsplices into it:
// the received files must be byte-identical to the source's.
func TestParallelTransferIntoZFSReceive(t *testing.T) {
	h := vmHost(t)
	hostPort := 0
	for hp, gp := range h.vm.Forwards {
		if gp == transferGuestPort {
			hostPort = hp
		}
	}
	if hostPort == 0 {
		t.Skipf("the VM forwards no host port to guest port %d (attached to a VM started without it)", transferGuestPort)
	}
	ctx := ctxT(t, 10*time.Minute)
	bin := h.installZcloud(t)
	src, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, gib)
	dst, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, gib)
	ds := zfsname.MustDataset(src.String() + "/data")
	if err := h.zfs.Create(ctx, ds, zfsexec.CreateOptions{Props: zfsexec.MustProps("compression", "off")}); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for i, mib := range []int{9, 1, 5} {
		name := fmt.Sprintf("f%d", i)
		sums[name] = h.writeRandom(t, "/"+ds.String()+"/"+name, mib)
	}
	snap, _ := ds.Snapshot("s1")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, snap); err != nil {
		t.Fatal(err)
	}
	target := zfsname.MustDataset(dst.String() + "/copy")

	// The receiver in the guest, as the replication activity starts it.
	sess, err := transfer.NewSession("")
	if err != nil {
		t.Fatal(err)
	}
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	remote := make(chan error, 1)
	go func() {
		_, err := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{bin, "transfer", "recv", "--port", strconv.Itoa(transferGuestPort),
			"--streams", "3", "--splice", "auto", "--", "zfs", "receive", target.String()}, Stdin: stdinR, Stdout: stdoutW})
		stdoutW.CloseWithError(fmt.Errorf("receiver exited: %v", err))
		remote <- err
	}()
	go transfer.WriteSession(stdinW, sess)
	defer stdinW.Close()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, transfer.ListeningPrefix) {
		t.Fatalf("receiver said %q, %v", line, err)
	}
	go io.Copy(io.Discard, stdoutR)

	// The stream: zfs send in the guest, through this process, back in over
	// the forwarded port, in small chunks so that many buffers cycle through
	// the pipe into zfs receive.
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		err := h.zfs.Send(ctx, snap, zfsexec.SendOptions{}, pw)
		pw.CloseWithError(err)
		sent <- err
	}()
	st, err := transfer.SendToReceiver(ctx, "127.0.0.1", hostPort, sess, pr, transfer.SendOptions{Streams: 3, ChunkSize: 64 << 10})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("zfs send: %v", err)
	}
	if err := <-remote; err != nil {
		t.Fatalf("transfer recv -- zfs receive: %v", err)
	}
	t.Logf("%d bytes in %d frames, %v", st.Bytes, st.Frames, st.Duration)
	for name, want := range sums {
		if got := h.sha256(t, "/"+target.String()+"/"+name); got != want {
			t.Errorf("%s: sha256 %s after the transfer, want %s", name, got, want)
		}
	}
}

// installZcloud builds zcloud for the guest and copies it there.
func (h *host) installZcloud(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "zcloud")
	build := exec.Command("go", "build", "-o", out, "zcloud/starter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build zcloud: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const path = "/tmp/zcloud"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{"sh", "-c", `cat > "$1" && chmod 755 "$1"`, "sh", path}, Stdin: f}); err != nil {
		t.Fatalf("copy zcloud into the guest: %v", err)
	}
	return path
}
