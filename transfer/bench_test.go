package transfer

import (
	"context"
	"io"
	"strconv"
	"testing"
)

// BenchmarkLoopback measures sender and receiver in one process (for
// profiling; bench/transfer measures them as separate processes).
func BenchmarkLoopback(b *testing.B) {
	for _, streams := range []int{1, 4} {
		for _, chunk := range []int{256 << 10, 1 << 20} {
			b.Run("streams="+strconv.Itoa(streams)+"/chunk="+strconv.Itoa(chunk>>10)+"KiB", func(b *testing.B) {
				const size = 256 << 20
				b.SetBytes(size)
				for range b.N {
					sess := newTestSession(b, "")
					port, res := startReceive(b, context.Background(), sess, io.Discard, ReceiveOptions{Streams: streams})
					if _, err := SendToReceiver(context.Background(), "127.0.0.1", port, sess, io.LimitReader(zeroReader{}, size),
						SendOptions{Streams: streams, ChunkSize: chunk}); err != nil {
						b.Fatal(err)
					}
					if r := <-res; r.err != nil {
						b.Fatal(r.err)
					}
				}
			})
		}
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
