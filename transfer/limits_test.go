package transfer

import (
	"bytes"
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestBandwidthLimit(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	sess := newTestSession(t, "")
	const size, limit = 3 << 20, 6 << 20 // 3 MiB at 6 MiB/s: about 0.5 s
	port, res := startReceive(t, ctx, sess, io.Discard, ReceiveOptions{Streams: 2})
	start := time.Now()
	_, err := SendToReceiver(ctx, "127.0.0.1", port, sess, bytes.NewReader(make([]byte, size)),
		SendOptions{Streams: 2, ChunkSize: 256 << 10, BandwidthLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	waitResult(t, res, 5*time.Second)
	// The first chunk is a free burst: (size - chunk) / limit at least.
	if took, min := time.Since(start), time.Duration(size-256<<10)*time.Second/limit; took < min {
		t.Fatalf("took %v, a %d B/s limit needs at least %v", took, limit, min)
	}
}

// TestMemoryBounded streams far more data than the window through a tiny
// window and checks that the heap never grows with the stream.
func TestMemoryBounded(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 128 << 20
	}
	ctx := testContext(t, 120*time.Second)
	sess := newTestSession(t, "")
	// The output stalls now and then (zfs receive pausing), so without
	// backpressure the receiver would have to buffer what the sender pushes
	// meanwhile: hundreds of MiB on loopback.
	out := &countingWriter{stallEvery: 256 << 20, stall: 500 * time.Millisecond}
	runtime.GC()
	port, res := startReceive(t, ctx, sess, out, ReceiveOptions{Streams: 4, Window: 4, MaxWindow: 4})

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	_, err := SendToReceiver(ctx, "127.0.0.1", port, sess, io.LimitReader(endlessReader{}, size),
		SendOptions{Streams: 4, ChunkSize: 256 << 10, SendWindow: 16})
	r := waitResult(t, res, 30*time.Second)
	close(stop)
	<-sampled
	if err != nil || r.err != nil {
		t.Fatalf("send %v, receive %v", err, r.err)
	}
	if out.n != size {
		t.Fatalf("received %d bytes, want %d", out.n, size)
	}
	// Sender: 16 unacknowledged chunks; receiver: 4-frame window + 4×64 KiB.
	const bound = 40 << 20
	t.Logf("%d MiB streamed, peak heap in use %.1f MiB (bound %d MiB)", size>>20, float64(peak.Load())/(1<<20), bound>>20)
	if peak.Load() > bound {
		t.Fatalf("peak heap %d bytes exceeds %d", peak.Load(), bound)
	}
}

// countingWriter counts bytes and, if stallEvery > 0, sleeps for stall each
// time that many more bytes have been written (and before the first write).
type countingWriter struct {
	n, stallEvery, nextStall int64
	stall                    time.Duration
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.stallEvery > 0 && w.n >= w.nextStall {
		time.Sleep(w.stall)
		w.nextStall += w.stallEvery
	}
	w.n += int64(len(p))
	return len(p), nil
}
