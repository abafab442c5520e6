package transfer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestSession(t testing.TB, cipher string) Session {
	t.Helper()
	s, err := NewSession(cipher)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func listenLoopback(t testing.TB) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// hashingWriter records what a receiver wrote without keeping it in memory.
type hashingWriter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func newHashingWriter() *hashingWriter { return &hashingWriter{h: sha256.New()} }

func (w *hashingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

func (w *hashingWriter) sum() [32]byte {
	var s [32]byte
	copy(s[:], w.h.Sum(nil))
	return s
}

type recvResult struct {
	stats Stats
	err   error
}

// startReceive runs Receive in the background on a fresh loopback listener.
func startReceive(t testing.TB, ctx context.Context, sess Session, w io.Writer, opts ReceiveOptions) (port int, result <-chan recvResult) {
	t.Helper()
	ln, port := listenLoopback(t)
	ch := make(chan recvResult, 1)
	go func() {
		st, err := Receive(ctx, ln, sess, w, opts)
		ch <- recvResult{st, err}
	}()
	return port, ch
}

func waitResult(t testing.TB, ch <-chan recvResult, limit time.Duration) recvResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(limit):
		t.Fatalf("receiver did not return within %v", limit)
		return recvResult{}
	}
}

func testContext(t testing.TB, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return ctx
}
