package transfer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// dropGate is a test-only gate in front of the receiver: a loopback proxy
// that forwards every connection, cuts the first one whose sender->receiver
// bytes reach cutAt (once, at that byte: no timing involved), and, with
// refuseAfterCut, closes every connection accepted after the cut at once (a
// receiver that keeps refusing reconnection). It is a fake on purpose: a real
// network cannot be made to drop one chosen connection at a chosen byte.
type dropGate struct {
	ln             net.Listener
	target         string
	cutAt          int64
	refuseAfterCut bool

	mu       sync.Mutex
	cut      bool
	accepted int
	refused  int

	// replied is closed once a connection accepted after the cut has
	// carried replyBytes from the receiver back to the sender (with
	// replyBytes set: the receiver answered a re-dial's handshake).
	replyBytes int64
	replied    chan struct{}
	replyOnce  sync.Once
	// holdAfterCut, if set, holds connections accepted after the cut until
	// it is closed.
	holdAfterCut chan struct{}
}

func newDropGate(t *testing.T, targetPort int, cutAt int64, refuseAfterCut bool, replyBytes int64, holdAfterCut chan struct{}) *dropGate {
	t.Helper()
	ln, _ := listenLoopback(t)
	g := &dropGate{ln: ln, target: net.JoinHostPort("127.0.0.1", itoa(targetPort)), cutAt: cutAt, refuseAfterCut: refuseAfterCut,
		replyBytes: replyBytes, replied: make(chan struct{}), holdAfterCut: holdAfterCut}
	go g.serve()
	return g
}

func (g *dropGate) port() int { return g.ln.Addr().(*net.TCPAddr).Port }

func (g *dropGate) counts() (accepted, refused int, cut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.accepted, g.refused, g.cut
}

func (g *dropGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		g.accepted++
		refuse := g.cut && g.refuseAfterCut
		if refuse {
			g.refused++
		}
		g.mu.Unlock()
		if refuse {
			c.Close()
			continue
		}
		if g.holdAfterCut != nil && g.cutDone() {
			<-g.holdAfterCut
		}
		go g.pipe(c)
	}
}

func (g *dropGate) cutDone() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cut
}

// claimCut reports whether this connection, having forwarded off bytes and
// holding n more, is the one to cut.
func (g *dropGate) claimCut(off, n int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cut || off+n < g.cutAt {
		return false
	}
	g.cut = true
	return true
}

func (g *dropGate) pipe(client net.Conn) {
	server, err := net.Dial("tcp", g.target)
	if err != nil {
		client.Close()
		return
	}
	closeBoth := func() { client.Close(); server.Close() }
	g.mu.Lock()
	afterCut := g.cut
	g.mu.Unlock()
	reverseDone := make(chan struct{})
	go func() {
		defer close(reverseDone)
		defer closeBoth()
		buf := make([]byte, 32<<10)
		var back int64
		for {
			n, err := server.Read(buf)
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					// The sender's side is gone (cut). Keep reading, so that
					// closing with unread data cannot reset the receiver's
					// side before it got what was forwarded.
					io.Copy(io.Discard, server)
					return
				}
				back += int64(n)
				if afterCut && g.replyBytes > 0 && back >= g.replyBytes {
					g.replyOnce.Do(func() { close(g.replied) })
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer closeBoth()
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if g.claimCut(off, int64(n)) {
				// The receiver gets the bytes up to the cut, then the end of
				// the connection (a FIN after them, not a reset that could
				// discard them); the sender's side is closed at once.
				server.Write(buf[:g.cutAt-off])
				server.(*net.TCPConn).CloseWrite()
				client.Close()
				<-reverseDone
				return
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
			off += int64(n)
		}
		if err != nil {
			return
		}
	}
}

// A connection dropped mid-stream is re-established and the frames the
// receiver had not received are sent again: the stream completes byte for
// byte. With one stream the cut is certainly mid-stream; with three, 24 MiB
// spread over three connections puts at least 8 MiB on one of them, past the
// 3 MiB cut.
func TestDroppedConnectionIsReestablished(t *testing.T) {
	for _, streams := range []int{1, 3} {
		t.Run(itoa(streams)+" streams", func(t *testing.T) {
			ctx := testContext(t, 60*time.Second)
			sess := newTestSession(t, "")
			data := randomBytes(t, 24<<20)
			out := newHashingWriter()
			port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Window: 8})
			gate := newDropGate(t, port, 3<<20+12345, false, 0, nil)
			st, err := SendToReceiver(ctx, "127.0.0.1", gate.port(), sess, bytes.NewReader(data), SendOptions{
				Streams: streams, ChunkSize: 256 << 10, ReconnectBackoff: time.Millisecond,
			})
			r := waitResult(t, res, 10*time.Second)
			if err != nil || r.err != nil {
				t.Fatalf("send = %v, receive = %v", err, r.err)
			}
			if _, _, cut := gate.counts(); !cut {
				t.Fatal("the gate never cut a connection")
			}
			if out.n != int64(len(data)) || out.sum() != sha256.Sum256(data) {
				t.Fatalf("output differs: %d bytes, want %d", out.n, len(data))
			}
			if st.Reconnects != 1 || r.stats.Reconnects != 1 {
				t.Fatalf("reconnects: sender %d, receiver %d; want 1 each", st.Reconnects, r.stats.Reconnects)
			}
			t.Logf("sender %+v, receiver %+v", st, r.stats)
		})
	}
}

// A receiver that keeps refusing the reconnection ends the send with a clear
// error after exactly ReconnectAttempts attempts (bounded by attempts ×
// backoff + dial timeouts), and the receiver itself reports the lost stream.
func TestReconnectRefusedFailsAfterBoundedAttempts(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	sess := newTestSession(t, "")
	out := newHashingWriter()
	port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 2, ReconnectTimeout: 2 * time.Second})
	gate := newDropGate(t, port, 1<<20, true, 0, nil)
	const attempts = 3
	_, err := SendToReceiver(ctx, "127.0.0.1", gate.port(), sess, bytes.NewReader(randomBytes(t, 8<<20)), SendOptions{
		Streams: 2, ChunkSize: 256 << 10, ReconnectAttempts: attempts, ReconnectBackoff: time.Millisecond, DialTimeout: 5 * time.Second,
	})
	if !errors.Is(err, ErrConnLost) || !strings.Contains(err.Error(), "3 reconnection attempts failed") {
		t.Fatalf("send = %v; want ErrConnLost after 3 reconnection attempts", err)
	}
	// Besides the reconnection attempts, each of the 2 lanes tries once to
	// say its abort on a fresh connection (refused too), before the send returns.
	accepted, refused, cut := gate.counts()
	if !cut || refused != attempts+2 || accepted != 2+attempts+2 {
		t.Fatalf("gate: accepted %d, refused %d, cut %v; want 2 streams + %d refused attempts + 2 refused aborts", accepted, refused, cut, attempts)
	}
	r := waitResult(t, res, 10*time.Second)
	if !errors.Is(r.err, ErrIncomplete) || !errors.Is(r.err, ErrConnLost) {
		t.Fatalf("receive = %v; want incomplete, connection lost", r.err)
	}
	t.Logf("sender: %v", err)
	t.Logf("receiver: %v", r.err)
}

// The receiver counts the times a connection had to wait for window space
// (the reorder window was the limit), and a stall ends when the frames
// before it are written.
func TestWindowStallsAreCounted(t *testing.T) {
	w := newReorderWindow(2, 2, time.Minute, func(error) {})
	a, b := &net.TCPConn{}, &net.TCPConn{}
	h := hello{chunk: 100, streams: 2}
	w.register(a, h, 16)
	h.index = 1
	w.register(b, h, 16)
	reserved := make(chan error, 1)
	go func() { // lane 1 is two frames ahead: it must wait
		_, err := w.reserve(1, 2, 50)
		reserved <- err
	}()
	for {
		w.mu.Lock()
		_, waiting := w.waiting[1]
		w.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(time.Millisecond) // polling an observable, not a delay
	}
	buf, err := w.reserve(0, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	w.fill(0, 0, buf[:10])
	if plain, _, _ := w.nextFrame(); len(plain) != 10 {
		t.Fatalf("next frame has %d bytes", len(plain))
	}
	w.advance(10)
	if err := <-reserved; err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, stalls := w.counters(); stalls != 1 {
		t.Fatalf("stalls = %d, want 1", stalls)
	}
}

// A stall doubles the window (up to MaxWindow) instead of stalling again at
// the same distance: the window adapts to the path, within its memory bound.
func TestWindowGrowsAtAStallUpToItsBound(t *testing.T) {
	w := newReorderWindow(2, 8, time.Minute, func(error) {})
	w.register(&net.TCPConn{}, hello{chunk: 100, streams: 1}, 16)
	if _, err := w.reserve(0, 5, 50); err != nil { // 5 >= 0+2: a stall, the window grows to 8
		t.Fatal(err)
	}
	if _, _, _, _, stalls := w.counters(); stalls != 1 || w.window != 8 {
		t.Fatalf("stalls %d, window %d; want 1 stall and the window at its bound 8", stalls, w.window)
	}
}

// A lane whose connection breaks after its END frame reached the receiver,
// but before the final ack came back, is re-dialled; the receiver, still
// writing the stream, answers the authenticated re-dial and sends the final
// ack on it, so the send succeeds. The gate cuts the connection right after
// the END frame's last byte (a byte count), and the receiver's last write
// waits until the receiver has answered the re-dial's handshake (an
// observable), so the stream cannot complete before the re-dial arrives.
func TestLaneBrokenAfterEndIsConfirmedOnRedial(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	sess := newTestSession(t, "")
	keys, err := deriveKeys(sess)
	if err != nil {
		t.Fatal(err)
	}
	const chunk, frames = 64 << 10, 8
	data := randomBytes(t, chunk*frames)
	overhead := keys.data.Overhead()
	toReceiver := int64(helloSize + proofSize + frames*(headerSize+chunk+overhead) + headerSize + endPayload + overhead)

	sendDone, replied := make(chan struct{}), make(chan (<-chan struct{}), 1)
	out := &lastWriteGate{w: newHashingWriter(), total: int64(len(data)), release: func() {
		select {
		case <-<-replied:
		case <-sendDone: // the re-dial was refused and the send gave up
		}
	}}
	ended := make(chan struct{})
	var endedOnce sync.Once
	testHookLaneEnded = func(session [sessionIDSize]byte, index uint16) {
		if session == sess.id { // the first END (the re-dial repeats it)
			endedOnce.Do(func() { close(ended) })
		}
	}
	t.Cleanup(func() { testHookLaneEnded = nil })
	port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Window: frames})
	// The gate's reply signal: the receiver's challenge, then its resume
	// point and proof. The re-dial reaches the receiver only once it
	// verified the END frame.
	gate := newDropGate(t, port, toReceiver, false, proofSize+resumeSize+proofSize, ended)
	replied <- gate.replied
	st, err := SendToReceiver(ctx, "127.0.0.1", gate.port(), sess, bytes.NewReader(data), SendOptions{
		Streams: 1, ChunkSize: chunk, ReconnectBackoff: time.Millisecond,
	})
	close(sendDone)
	r := waitResult(t, res, 10*time.Second)
	if err != nil || r.err != nil {
		t.Fatalf("send = %v, receive = %v", err, r.err)
	}
	if _, _, cut := gate.counts(); !cut {
		t.Fatal("the gate never cut a connection")
	}
	if out.w.n != int64(len(data)) || out.w.sum() != sha256.Sum256(data) {
		t.Fatalf("output differs: %d bytes, want %d", out.w.n, len(data))
	}
	if st.Reconnects != 1 || r.stats.Reconnects != 1 {
		t.Fatalf("reconnects: sender %d, receiver %d; want 1 each", st.Reconnects, r.stats.Reconnects)
	}
}

// lastWriteGate passes writes to w but holds the one that completes total
// bytes until release returns.
type lastWriteGate struct {
	w       *hashingWriter
	total   int64
	release func()
}

func (g *lastWriteGate) Write(p []byte) (int, error) {
	if g.w.n+int64(len(p)) >= g.total {
		g.release()
	}
	return g.w.Write(p)
}
