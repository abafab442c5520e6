//go:build linux

package transfer

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSpliceWriterKeepsBuffersUntilRead is the safety property of vmsplice:
// a buffer handed back for reuse is scribbled over at once, yet the slow
// reader must still see every byte as written, also when it enlarges the pipe
// halfway (as libzfs does on zfs receive's stdin).
func TestSpliceWriterKeepsBuffersUntilRead(t *testing.T) {
	for _, grow := range []bool{false, true} {
		t.Run(map[bool]string{false: "fixed pipe", true: "reader grows pipe"}[grow], func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			if _, err := unix.FcntlInt(pw.Fd(), unix.F_SETPIPE_SZ, 64<<10); err != nil {
				t.Fatal(err)
			}
			sw := newSpliceWriter(pw)
			const frames, frameSize = 96, 100 << 10 // not page multiples: partial pages too
			frame := func(i int) []byte {
				b := make([]byte, frameSize)
				r := rand.NewChaCha8([32]byte{byte(i), byte(i >> 8)})
				r.Read(b)
				return b
			}

			readErr := make(chan error, 1)
			go func() {
				var got bytes.Buffer
				buf := make([]byte, 16<<10)
				for got.Len() < frames*frameSize {
					n, err := pr.Read(buf)
					got.Write(buf[:n])
					if err != nil {
						readErr <- err
						return
					}
					if grow && got.Len() >= frames*frameSize/2 && got.Len()-n < frames*frameSize/2 {
						if _, err := unix.FcntlInt(pr.Fd(), unix.F_SETPIPE_SZ, 1<<20); err != nil {
							readErr <- err
							return
						}
					}
					time.Sleep(200 * time.Microsecond) // slower than the writer: the pipe stays full
				}
				for i := range frames {
					if !bytes.Equal(got.Bytes()[i*frameSize:(i+1)*frameSize], frame(i)) {
						readErr <- fmt.Errorf("frame %d arrived changed: a buffer was reused while the pipe still held it", i)
						return
					}
				}
				readErr <- nil
			}()

			var pool [][]byte
			held := 0
			for i := range frames {
				var b []byte
				if n := len(pool); n > 0 {
					b, pool = pool[n-1], pool[:n-1]
				} else {
					b = make([]byte, frameSize)
				}
				copy(b, frame(i))
				reusable, err := sw.writeRetained(b)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				for _, r := range reusable {
					for j := range r {
						r[j] = 0xEE // what recycling does to a buffer
					}
					pool = append(pool, r)
				}
				held = max(held, len(sw.retained))
			}
			pw.Close()
			if err := <-readErr; err != nil {
				t.Fatal(err)
			}
			sw.release()
			if sw.copying {
				t.Fatal("vmsplice was not used (fell back to copying)")
			}
			// Bounded: about one pipe's worth of frames is retained, never all.
			if held >= frames/2 {
				t.Fatalf("retained up to %d of %d frames", held, frames)
			}
			t.Logf("retained at most %d frames of %d KiB", held, frameSize>>10)
		})
	}
}
