package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer collects RecvMain's stdout (the LISTENING line, then the receive
// command's output) and reports the announced port.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	portc chan int
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before := b.buf.Len()
	b.buf.Write(p)
	if before == 0 {
		line, _, _ := strings.Cut(b.buf.String(), "\n")
		if port, err := strconv.Atoi(strings.TrimPrefix(line, ListeningPrefix)); err == nil {
			b.portc <- port
		}
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type recvMainRun struct {
	port   int
	stdin  *io.PipeWriter // closing it is the SSH session dying
	stdout *syncBuffer
	result chan error
}

// startRecvMain runs RecvMain as `zcloud transfer recv` would: the session is
// written on its stdin, which stays open.
func startRecvMain(t *testing.T, ctx context.Context, sess Session, opts RecvOptions) *recvMainRun {
	t.Helper()
	pr, pw := io.Pipe()
	run := &recvMainRun{stdin: pw, stdout: &syncBuffer{portc: make(chan int, 1)}, result: make(chan error, 1)}
	if opts.ListenAddr == "" {
		opts.ListenAddr = "127.0.0.1"
	}
	go func() { run.result <- RecvMain(ctx, opts, pr, run.stdout) }()
	t.Cleanup(func() { pw.Close() })
	go WriteSession(pw, sess)
	select {
	case run.port = <-run.stdout.portc:
	case err := <-run.result:
		t.Fatalf("RecvMain ended before listening: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no LISTENING line")
	}
	if got := run.stdout.String(); got != ListeningPrefix+strconv.Itoa(run.port)+"\n" {
		t.Fatalf("stdout before the transfer = %q, want exactly one LISTENING line", got)
	}
	return run
}

func (r *recvMainRun) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-r.result:
		return err
	case <-time.After(limit):
		t.Fatalf("RecvMain did not return within %v", limit)
		return nil
	}
}

func TestRecvMainFeedsCommand(t *testing.T) {
	for _, splice := range []string{SpliceNever, SpliceAlways} {
		t.Run(splice, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			sess := newTestSession(t, "")
			run := startRecvMain(t, ctx, sess, RecvOptions{Command: []string{"sha256sum"}, Splice: splice, ReceiveOptions: ReceiveOptions{Streams: 4}})
			data := randomBytes(t, 37<<20+3) // several pipes' worth, ragged end
			if _, err := SendToReceiver(ctx, "127.0.0.1", run.port, sess, bytes.NewReader(data), SendOptions{Streams: 4, ChunkSize: 300 << 10}); err != nil {
				t.Fatalf("send: %v", err)
			}
			if err := run.wait(t, 10*time.Second); err != nil {
				t.Fatalf("RecvMain: %v", err)
			}
			sum := sha256.Sum256(data)
			if want := hex.EncodeToString(sum[:]); !strings.Contains(run.stdout.String(), want) {
				t.Fatalf("sha256sum output %q does not contain %s", run.stdout.String(), want)
			}
		})
	}
}

func TestSpliceOnlyForCommandsThatRead(t *testing.T) {
	for _, c := range []struct {
		mode string
		argv []string
		want bool
	}{
		{"", []string{"zfs", "receive", "-s", "tank/x"}, true},
		{SpliceAuto, []string{"/usr/sbin/zfs", "recv", "tank/x"}, true},
		{SpliceAuto, []string{"sudo", "-n", "zfs", "receive", "tank/x"}, true},
		{SpliceAuto, []string{"cat"}, true},
		{SpliceAuto, []string{"zfs", "send", "tank/x@s"}, false},
		{SpliceAuto, []string{"pv"}, false}, // may splice our pages onward
		{SpliceAuto, []string{"sh", "-c", "zfs receive tank/x"}, false},
		{SpliceAuto, []string{"sudo"}, false},
		{SpliceNever, []string{"cat"}, false},
		{SpliceAlways, []string{"pv"}, true},
	} {
		got, err := spliceWanted(c.mode, c.argv)
		if err != nil || got != c.want {
			t.Errorf("spliceWanted(%q, %q) = %v, %v; want %v", c.mode, c.argv, got, err, c.want)
		}
	}
	if _, err := spliceWanted("sometimes", []string{"cat"}); err == nil {
		t.Error("an unknown splice mode was accepted")
	}
}

func TestRecvMainPortRange(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	busy, busyPort := listenLoopback(t)
	defer busy.Close()
	sess := newTestSession(t, "")
	run := startRecvMain(t, ctx, sess, RecvOptions{PortMin: busyPort, PortMax: busyPort + 20, Command: []string{"cat"}})
	if run.port <= busyPort || run.port > busyPort+20 {
		t.Fatalf("listening on %d, want in (%d, %d]", run.port, busyPort, busyPort+20)
	}
	run.stdin.Close()
	if err := run.wait(t, 5*time.Second); err == nil {
		t.Fatal("RecvMain succeeded without a sender")
	}
}

func TestRecvMainRejectsBadSessionLine(t *testing.T) {
	err := RecvMain(context.Background(), RecvOptions{Command: []string{"cat"}}, strings.NewReader("hello\n"), io.Discard)
	if err == nil {
		t.Fatal("accepted a malformed session line")
	}
}

func TestFlippedBitKillsReceiveCommand(t *testing.T) {
	// Byte offsets in the sender->receiver direction of one connection: the
	// handshake is helloSize+proofSize bytes, then the first frame's header.
	first := int64(helloSize + proofSize)
	offsets := map[string]int64{
		"payload":       first + headerSize + 5000,
		"sequence":      first + 3,
		"length":        first + 13,
		"type":          first + 8,
		"handshake":     40,
		"payload later": first + 3<<20,
	}
	for name, at := range offsets {
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			sess := newTestSession(t, "")
			// The proxy damages the first connection only; with several
			// streams a slow one may carry fewer frames than the offset
			// needs, so the data offsets use one stream to be sure the
			// flip happens. The handshake flip hits whichever connects first.
			streams := 1
			if name == "handshake" {
				streams = 4
			}
			run := startRecvMain(t, ctx, sess, RecvOptions{Command: []string{"sha256sum"}, ReceiveOptions: ReceiveOptions{Streams: streams}})
			proxy := newCorruptingProxy(t, run.port, at, -1)
			_, sendErr := SendToReceiver(ctx, "127.0.0.1", proxy.port(), sess, bytes.NewReader(randomBytes(t, 16<<20)), SendOptions{Streams: streams})
			if sendErr == nil {
				t.Fatal("sender reported success through a corrupting proxy")
			}
			err := run.wait(t, 15*time.Second)
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("RecvMain: got %v, want incomplete", err)
			}
			// sha256sum prints a digest only when its stdin ends normally; a
			// killed command prints nothing.
			if out := run.stdout.String(); strings.Count(out, "\n") != 1 {
				t.Fatalf("receive command was not killed, its output: %q", out)
			}
			t.Logf("sender: %v\nreceiver: %v", sendErr, err)
		})
	}
}

func TestConnectionDroppedMidStreamThenRetry(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	data := randomBytes(t, 12<<20)
	sess := newTestSession(t, "")
	out := newHashingWriter()
	// One stream, so the damaged connection surely carries the bytes past
	// the cut (with several, a slow one may take fewer frames).
	// Without reconnection (TestDroppedConnectionIsReestablished has it),
	// the send fails and the receiver gives the lane up after its timeout.
	port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 1, ReconnectTimeout: 500 * time.Millisecond})
	proxy := newCorruptingProxy(t, port, -1, helloSize+proofSize+2<<20)
	if _, err := SendToReceiver(ctx, "127.0.0.1", proxy.port(), sess, bytes.NewReader(data), SendOptions{Streams: 1, ReconnectAttempts: -1}); err == nil {
		t.Fatal("sender reported success over a dropped connection")
	}
	expectIncomplete(t, res, ErrConnLost)

	// The caller retries the whole send with a fresh session.
	sess = newTestSession(t, "")
	out = newHashingWriter()
	port, res = startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 4})
	if _, err := SendToReceiver(ctx, "127.0.0.1", port, sess, bytes.NewReader(data), SendOptions{Streams: 4}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if r := waitResult(t, res, 5*time.Second); r.err != nil || out.sum() != sha256.Sum256(data) {
		t.Fatalf("retry: err %v, identical %v", r.err, out.sum() == sha256.Sum256(data))
	}
}

// endlessReader is an unbounded input, like a large `zfs send`.
type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// uniqueMarker names a receive command so pgrep can find any survivor.
func uniqueMarker(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return "zcloud-transfer-test-" + hex.EncodeToString(b)
}

// slowSink is a receive command that keeps running after its stdin ends, so
// only a kill (not an EOF) makes it go away.
func slowSink(marker string) []string {
	return []string{"sh", "-c", "cat >/dev/null; exec sleep 300", marker}
}

func assertNoProcess(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		out, err := exec.Command("pgrep", "-f", marker).Output()
		if err != nil { // exit 1: no process matched
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("receive command still running: pids %s", strings.TrimSpace(string(out)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCancellationLeavesNoProcess(t *testing.T) {
	cases := []struct {
		name   string
		cancel func(cancelSender, cancelReceiver context.CancelFunc, run *recvMainRun)
	}{
		{"sender cancelled", func(cs, _ context.CancelFunc, _ *recvMainRun) { cs() }},
		{"receiver cancelled", func(_, cr context.CancelFunc, _ *recvMainRun) { cr() }},
		{"ssh session dies (stdin EOF)", func(_, _ context.CancelFunc, run *recvMainRun) { run.stdin.Close() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			marker := uniqueMarker(t)
			recvCtx, cancelRecv := context.WithCancel(testContext(t, 30*time.Second))
			defer cancelRecv()
			sess := newTestSession(t, "")
			run := startRecvMain(t, recvCtx, sess, RecvOptions{Command: slowSink(marker), ReceiveOptions: ReceiveOptions{Streams: 3}})
			sendCtx, cancelSend := context.WithCancel(testContext(t, 30*time.Second))
			defer cancelSend()
			progressed := make(chan struct{}, 1)
			sendDone := make(chan error, 1)
			go func() {
				_, err := SendToReceiver(sendCtx, "127.0.0.1", run.port, sess, endlessReader{}, SendOptions{
					Streams: 3, BandwidthLimit: 50 << 20, ProgressInterval: 50 * time.Millisecond,
					Progress: func(p Progress) {
						if p.Bytes > 1<<20 {
							select {
							case progressed <- struct{}{}:
							default:
							}
						}
					},
				})
				sendDone <- err
			}()
			select {
			case <-progressed:
			case <-time.After(10 * time.Second):
				t.Fatal("no progress")
			}
			start := time.Now()
			tc.cancel(cancelSend, cancelRecv, run)
			select {
			case err := <-sendDone:
				if err == nil {
					t.Fatal("sender reported success")
				}
			case <-time.After(3 * time.Second):
				t.Fatal("sender did not return promptly")
			}
			if err := run.wait(t, 3*time.Second); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("RecvMain: got %v, want incomplete", err)
			}
			t.Logf("both ends returned %v after cancellation", time.Since(start).Round(time.Millisecond))
			assertNoProcess(t, marker)
		})
	}
}
