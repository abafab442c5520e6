package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// expectDropped checks that the receiver closes a stranger's connection
// without sending anything but (at most) its 32-byte challenge.
func expectDropped(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: receiver kept the connection open", what)
	}
	if len(got) > proofSize {
		t.Fatalf("%s: receiver sent %d bytes, more than a challenge", what, len(got))
	}
}

func dialLoopback(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// captureHandshake records the hello and proof a legitimate sender sent for
// sess in an earlier transfer, as an eavesdropper would.
func captureHandshake(t *testing.T, sess Session) []byte {
	ctx := testContext(t, 20*time.Second)
	port, res := startReceive(t, ctx, sess, io.Discard, ReceiveOptions{Streams: 1})
	proxy := newCorruptingProxy(t, port, -1, -1)
	if _, err := SendToReceiver(ctx, "127.0.0.1", proxy.port(), sess, bytes.NewReader([]byte("earlier")), SendOptions{Streams: 1}); err != nil {
		t.Fatal(err)
	}
	if r := waitResult(t, res, 5*time.Second); r.err != nil {
		t.Fatal(r.err)
	}
	return proxy.capturedBytes()[:helloSize+proofSize]
}

func TestStrangersDroppedLegitTransferCompletes(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	sess := newTestSession(t, "")
	replay := captureHandshake(t, sess)
	data := randomBytes(t, 4<<20)
	out := newHashingWriter()
	port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 4, AcceptTimeout: 10 * time.Second})

	silent := dialLoopback(t, port) // holds a handshake slot open and says nothing
	garbage := dialLoopback(t, port)
	garbage.Write(randomBytes(t, 64))
	replayed := dialLoopback(t, port)
	replayed.Write(replay)
	forged := dialLoopback(t, port) // right session id, no key
	h := hello{cipher: cipherIDs[sess.cipher], streams: 4, index: 0, chunk: 1 << 20, session: sess.id}
	forged.Write(append(h.marshal(), randomBytes(t, proofSize)...))
	expectDropped(t, garbage, "random bytes")
	expectDropped(t, replayed, "replayed handshake")
	expectDropped(t, forged, "forged proof")

	if _, err := SendToReceiver(ctx, "127.0.0.1", port, sess, bytes.NewReader(data), SendOptions{Streams: 4}); err != nil {
		t.Fatalf("legit send: %v", err)
	}
	r := waitResult(t, res, 5*time.Second)
	if r.err != nil {
		t.Fatalf("receive: %v", r.err)
	}
	if out.sum() != sha256.Sum256(data) {
		t.Fatal("output differs from input")
	}
	if r.stats.Rejected < 3 {
		t.Fatalf("rejected %d strangers, want >= 3", r.stats.Rejected)
	}
	expectDropped(t, silent, "silent stranger after the transfer")
}

func TestStrangerBetweenLegitConnections(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	sess := newTestSession(t, CipherChaCha20)
	out := newHashingWriter()
	port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 2})
	a := dialRaw(t, port, sess, 2, 0, 1024)
	stranger := dialLoopback(t, port)
	stranger.Write(randomBytes(t, 100))
	expectDropped(t, stranger, "stranger between legit connections")
	b := dialRaw(t, port, sess, 2, 1, 1024)

	p0, p1, p2 := randomBytes(t, 1024), randomBytes(t, 1024), randomBytes(t, 10)
	b.send(t, b.dataFrame(1, p1), b.endFrame(1, 2058, 3))
	a.send(t, a.dataFrame(0, p0), a.dataFrame(2, p2), a.endFrame(0, 2058, 3))
	r := waitResult(t, res, 5*time.Second)
	if r.err != nil {
		t.Fatalf("receive: %v", r.err)
	}
	want := sha256.Sum256(append(append(p0, p1...), p2...))
	if out.sum() != want {
		t.Fatal("output differs")
	}
}

// receiveRaw starts a receiver with the given options and returns a raw
// sender for stream 0 plus the receiver's outcome channel.
func receiveRaw(t *testing.T, opts ReceiveOptions, out io.Writer) (Session, int, <-chan recvResult) {
	ctx := testContext(t, 30*time.Second)
	sess := newTestSession(t, "")
	port, res := startReceive(t, ctx, sess, out, opts)
	return sess, port, res
}

func expectIncomplete(t *testing.T, res <-chan recvResult, reason error) recvResult {
	t.Helper()
	r := waitResult(t, res, 10*time.Second)
	if !errors.Is(r.err, ErrIncomplete) || !errors.Is(r.err, reason) {
		t.Fatalf("receive: got %v, want incomplete with %v", r.err, reason)
	}
	var ie *IncompleteError
	if !errors.As(r.err, &ie) {
		t.Fatalf("receive error %T is not *IncompleteError", r.err)
	}
	t.Logf("receiver: %v", r.err)
	return r
}

func TestProtocolAttacksFailTheStream(t *testing.T) {
	payload := make([]byte, 1000)
	cases := []struct {
		name    string
		streams int
		window  int
		reason  error
		attack  func(t *testing.T, conns []*rawSender)
	}{
		{"truncated: no end marker", 1, 0, ErrConnLost, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, payload), c[0].dataFrame(1, payload))
			c[0].conn.Close()
		}},
		{"truncated: one of two streams ends early", 2, 0, ErrConnLost, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, payload), c[0].endFrame(0, 2000, 2))
			c[1].send(t, c[1].dataFrame(1, payload)[:500])
			c[1].conn.Close()
		}},
		{"end marker claims fewer frames", 1, 0, ErrProtocol, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, payload), c[0].dataFrame(1, payload), c[0].endFrame(0, 1000, 1))
		}},
		{"end marker claims other length", 1, 0, ErrProtocol, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, payload), c[0].endFrame(0, 999, 1))
		}},
		{"end markers disagree", 2, 0, ErrProtocol, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, payload), c[0].endFrame(0, 1000, 1))
			c[1].send(t, c[1].endFrame(1, 2000, 2))
		}},
		{"replayed frame on the same stream", 1, 0, ErrDuplicate, func(t *testing.T, c []*rawSender) {
			f := c[0].dataFrame(0, payload)
			c[0].send(t, f, f)
		}},
		{"replayed frame on another stream", 2, 0, ErrDuplicate, func(t *testing.T, c []*rawSender) {
			f := c[0].dataFrame(0, payload)
			c[0].send(t, f)
			c[0].awaitReceived(t, 0, 1) // the receiver holds it: what follows is the replay
			c[1].send(t, f)
		}},
		{"reordered within a stream", 1, 0, ErrDuplicate, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(1, payload), c[0].dataFrame(0, payload))
		}},
		{"gap beyond the window, one stream", 1, 4, ErrOutOfWindow, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, payload), c[0].dataFrame(9, payload))
		}},
		{"gap beyond the window, two streams", 2, 2, ErrOutOfWindow, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(5, payload))
			c[1].send(t, c[1].dataFrame(6, payload))
		}},
		{"missing frame before the end", 1, 0, ErrProtocol, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, payload), c[0].dataFrame(2, payload), c[0].endFrame(0, 3000, 3))
		}},
		{"sequence number rewritten", 1, 0, ErrAuth, func(t *testing.T, c []*rawSender) {
			f := c[0].dataFrame(0, payload)
			f[7] = 1 // header says frame 1, the tag was computed for frame 0
			c[0].send(t, f)
		}},
		{"end marker forged as data", 1, 0, ErrAuth, func(t *testing.T, c []*rawSender) {
			f := c[0].endFrame(0, 0, 0)
			f[8] = frameData
			c[0].send(t, f)
		}},
		{"frame sealed under another key", 1, 0, ErrAuth, func(t *testing.T, c []*rawSender) {
			other, _ := deriveKeys(newTestSession(t, ""))
			evil := &rawSender{keys: other}
			c[0].send(t, evil.dataFrame(0, payload))
		}},
		{"replayed keepalive", 1, 0, ErrDuplicate, func(t *testing.T, c []*rawSender) {
			k := c[0].keepaliveFrame(0, 0)
			c[0].send(t, c[0].dataFrame(0, payload), k, k)
		}},
		{"keepalive for another stream", 2, 0, ErrProtocol, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].keepaliveFrame(1, 0))
		}},
		{"keepalive carrying data", 1, 0, ErrProtocol, func(t *testing.T, c []*rawSender) {
			f := c[0].dataFrame(0, payload)
			f[8] = frameKeepalive
			c[0].send(t, f)
		}},
		{"keepalive forged", 1, 0, ErrAuth, func(t *testing.T, c []*rawSender) {
			k := c[0].keepaliveFrame(0, 0)
			k[len(k)-1] ^= 1
			c[0].send(t, k)
		}},
		{"oversized frame", 1, 0, ErrProtocol, func(t *testing.T, c []*rawSender) {
			c[0].send(t, c[0].dataFrame(0, make([]byte, 4096)))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := newHashingWriter()
			// A lane that breaks may come back; these attacks never do.
			sess, port, res := receiveRaw(t, ReceiveOptions{Window: tc.window, MaxWindow: tc.window, IdleTimeout: 20 * time.Second, ReconnectTimeout: 200 * time.Millisecond}, out)
			conns := make([]*rawSender, tc.streams)
			for i := range conns {
				conns[i] = dialRaw(t, port, sess, tc.streams, i, 1024)
			}
			tc.attack(t, conns)
			r := expectIncomplete(t, res, tc.reason)
			if r.stats.Bytes != out.n {
				t.Fatalf("stats say %d bytes written, writer saw %d", r.stats.Bytes, out.n)
			}
		})
	}
}

func TestIdleConnectionTimesOut(t *testing.T) {
	sess, port, res := receiveRaw(t, ReceiveOptions{Streams: 1, IdleTimeout: 300 * time.Millisecond}, io.Discard)
	c := dialRaw(t, port, sess, 1, 0, 1024)
	c.send(t, c.dataFrame(0, []byte("then silence")))
	expectIncomplete(t, res, ErrTimeout)
}

// quietReader is `zfs send` pausing: a first part, a long silence, the rest.
type quietReader struct {
	first, rest []byte
	pause       time.Duration
	paused      bool
}

func (q *quietReader) Read(p []byte) (int, error) {
	if len(q.first) > 0 {
		n := copy(p, q.first)
		q.first = q.first[n:]
		return n, nil
	}
	if !q.paused {
		q.paused = true
		time.Sleep(q.pause)
	}
	if len(q.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, q.rest)
	q.rest = q.rest[n:]
	return n, nil
}

// A source quiet for longer than the receiver's idle timeout is carried by
// keepalives (every 100 ms here, against a 1 s timeout: margin for a loaded
// machine); without them the same silence fails the stream.
func TestKeepaliveCarriesAQuietSource(t *testing.T) {
	data := randomBytes(t, 3<<20)
	for _, c := range []struct {
		name      string
		keepalive time.Duration
		wantErr   bool
	}{{"keepalives", 100 * time.Millisecond, false}, {"no keepalive in time", time.Hour, true}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			sess := newTestSession(t, "")
			out := newHashingWriter()
			port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 3, IdleTimeout: time.Second})
			in := &quietReader{first: data[:1<<20], rest: data[1<<20:], pause: 2500 * time.Millisecond}
			_, sendErr := SendToReceiver(ctx, "127.0.0.1", port, sess, in, SendOptions{Streams: 3, ChunkSize: 256 << 10, Keepalive: c.keepalive})
			r := waitResult(t, res, 10*time.Second)
			if c.wantErr {
				if !errors.Is(r.err, ErrTimeout) || sendErr == nil {
					t.Fatalf("receive = %v, send = %v; want an idle timeout", r.err, sendErr)
				}
				return
			}
			if sendErr != nil || r.err != nil {
				t.Fatalf("send = %v, receive = %v", sendErr, r.err)
			}
			if out.sum() != sha256.Sum256(data) {
				t.Fatal("received bytes differ")
			}
		})
	}
}

// stalledReader gives some data, then blocks like a quiet `zfs send` until
// the test ends; quiet is closed when it starts blocking.
type stalledReader struct {
	data    []byte
	quiet   chan struct{}
	release chan struct{}
}

func (s *stalledReader) Read(p []byte) (int, error) {
	if len(s.data) > 0 {
		n := copy(p, s.data)
		s.data = s.data[n:]
		return n, nil
	}
	close(s.quiet)
	<-s.release
	return 0, io.ErrClosedPipe
}

// A receiver that fails while the source is quiet ends the send at once: the
// sender must not wait for more input (or a keepalive) to notice.
func TestSenderNoticesAFailedReceiverWhileInputIsQuiet(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	sess := newTestSession(t, "")
	recvCtx, cancelRecv := context.WithCancel(ctx)
	port, res := startReceive(t, recvCtx, sess, io.Discard, ReceiveOptions{Streams: 4})
	in := &stalledReader{data: randomBytes(t, 2<<20), quiet: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(in.release) })
	sent := make(chan error, 1)
	go func() {
		_, err := SendToReceiver(ctx, "127.0.0.1", port, sess, in, SendOptions{Streams: 4, ChunkSize: 256 << 10})
		sent <- err
	}()
	<-in.quiet // every chunk was taken; the sender now waits on its input
	cancelRecv()
	expectIncompleteReason(t, res)
	select {
	case err := <-sent:
		if !errors.Is(err, ErrConnLost) || !strings.Contains(err.Error(), "gave up") {
			t.Fatalf("send = %v; want ErrConnLost: the receiver gave up", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sender still waits on its quiet input 5 s after the receiver failed")
	}
}

func expectIncompleteReason(t *testing.T, res <-chan recvResult) {
	t.Helper()
	if r := waitResult(t, res, 5*time.Second); !errors.Is(r.err, ErrIncomplete) {
		t.Fatalf("receive = %v; want incomplete", r.err)
	}
}
