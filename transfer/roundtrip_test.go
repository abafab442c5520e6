package transfer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestRoundTripByteIdentical(t *testing.T) {
	cases := []struct {
		name    string
		cipher  string
		streams int
		chunk   int
		size    int
		window  int
	}{
		{"aes 1 stream", CipherAESGCM, 1, 0, 6<<20 + 12345, 0},
		{"aes 4 streams", CipherAESGCM, 4, 0, 8<<20 + 1, 0},
		{"chacha 5 streams odd chunk", CipherChaCha20, 5, 100003, 5 << 20, 3},
		{"aes 8 streams tiny window", CipherAESGCM, 8, 64 << 10, 3<<20 + 7, 1},
		{"empty stream", CipherAESGCM, 3, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t, 30*time.Second)
			sess := newTestSession(t, tc.cipher)
			data := randomBytes(t, tc.size)
			out := newHashingWriter()
			port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: tc.streams, Window: tc.window, MaxWindow: tc.window})
			var progressCalls atomic.Int32
			st, err := SendToReceiver(ctx, "127.0.0.1", port, sess, bytes.NewReader(data), SendOptions{
				Streams: tc.streams, ChunkSize: tc.chunk,
				Progress: func(Progress) { progressCalls.Add(1) },
			})
			if err != nil {
				r := waitResult(t, res, 10*time.Second)
				t.Fatalf("send: %v; receive: %v", err, r.err)
			}
			r := waitResult(t, res, 10*time.Second)
			if r.err != nil {
				t.Fatalf("receive: %v", r.err)
			}
			if out.n != int64(len(data)) || out.sum() != sha256.Sum256(data) {
				t.Fatalf("output differs: %d bytes written, want %d", out.n, len(data))
			}
			if st.Bytes != int64(len(data)) || r.stats.Bytes != int64(len(data)) || st.Frames != r.stats.Frames {
				t.Fatalf("stats: sent %+v received %+v", st, r.stats)
			}
			if progressCalls.Load() == 0 {
				t.Fatal("progress callback never called")
			}
		})
	}
}

func TestWrongKeyRejectedNothingWritten(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	sess := newTestSession(t, "")
	wrong := sess
	wrong.key[0] ^= 1 // same session id and cipher: only the key differs
	out := newHashingWriter()
	port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 2, AcceptTimeout: time.Second})
	_, err := SendToReceiver(ctx, "127.0.0.1", port, wrong, bytes.NewReader(randomBytes(t, 1<<20)), SendOptions{Streams: 2})
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("send with wrong key: got %v, want ErrHandshake", err)
	}
	r := waitResult(t, res, 5*time.Second)
	if !errors.Is(r.err, ErrIncomplete) || !errors.Is(r.err, ErrTimeout) {
		t.Fatalf("receive: got %v, want incomplete/timeout", r.err)
	}
	if out.n != 0 {
		t.Fatalf("%d bytes written for a wrong key", out.n)
	}
	if r.stats.Rejected != 2 {
		t.Fatalf("rejected %d connections, want 2", r.stats.Rejected)
	}
	t.Logf("receiver error: %v", r.err)
}
