package transfer

import (
	"fmt"
	"net"
	"sync"
)

// reorderWindow holds frames that arrived ahead of the next one to write. A
// connection reserves a slot (by sequence number) before reading a frame's
// payload, and waits while the sequence is Window or more ahead of the next
// frame to write: that wait is the backpressure (the connection stops reading,
// TCP's window closes, the sender's writer blocks). Memory is bounded by
// Window buffers of one frame each.
type reorderWindow struct {
	mu   sync.Mutex
	cond *sync.Cond

	window  uint64
	next    uint64            // next sequence to write
	slots   map[uint64][]byte // reserved (nil) or filled (plaintext)
	filled  map[uint64]bool
	free    [][]byte
	bufSize int

	streams  int
	accepted int // authenticated connections
	conns    []net.Conn
	active   int            // connection readers neither ended nor exited
	waiting  map[int]uint64 // stream index -> sequence it waits to reserve
	ended    int            // connections whose END frame was verified

	endKnown    bool
	totalBytes  uint64
	totalFrames uint64

	written int64
	err     error // first failure; everything stops
	onFail  func()
}

func newReorderWindow(window, streams int, onFail func()) *reorderWindow {
	w := &reorderWindow{
		window:  uint64(window),
		slots:   make(map[uint64][]byte),
		filled:  make(map[uint64]bool),
		streams: streams,
		conns:   make([]net.Conn, streams),
		waiting: make(map[int]uint64),
		onFail:  onFail,
	}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// fail records the first error; later ones are consequences of it.
func (w *reorderWindow) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failLocked(err)
}

func (w *reorderWindow) failLocked(err error) {
	if w.err != nil {
		return
	}
	w.err = err
	for _, c := range w.conns {
		if c != nil {
			c.Close()
		}
	}
	w.cond.Broadcast()
	go w.onFail()
}

func (w *reorderWindow) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// register admits an authenticated connection. It reports false (and the
// caller closes conn) if the index is taken, the stream failed, or the chunk
// size differs from the one the first connection announced.
func (w *reorderWindow) register(conn net.Conn, h hello, overhead int) (ok bool, all bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.conns[h.index] != nil {
		return false, false
	}
	size := int(h.chunk) + overhead
	if w.accepted > 0 && size != w.bufSize {
		w.failLocked(reasonf(ErrProtocol, "stream %d announced chunk size %d, others %d", h.index, h.chunk, w.bufSize-overhead))
		return false, false
	}
	w.bufSize = size
	w.conns[h.index] = conn
	w.accepted++
	w.active++
	return true, w.accepted == w.streams
}

// reserve claims sequence seq for a frame of sealedLen bytes and returns a
// buffer for it, waiting while seq is beyond the window.
func (w *reorderWindow) reserve(index int, seq uint64, sealedLen int) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sealedLen > w.bufSize {
		return nil, reasonf(ErrProtocol, "frame %d of %d bytes exceeds the announced chunk size", seq, sealedLen)
	}
	if w.err == nil && seq >= w.next+w.window {
		w.waiting[index] = seq
		for w.err == nil && seq >= w.next+w.window {
			w.checkStuckLocked()
			if w.err == nil {
				w.cond.Wait()
			}
		}
		delete(w.waiting, index)
	}
	if w.err != nil {
		return nil, w.err
	}
	if _, dup := w.slots[seq]; dup || seq < w.next {
		return nil, reasonf(ErrDuplicate, "frame %d seen twice (next to write is %d)", seq, w.next)
	}
	if w.endKnown && seq >= w.totalFrames {
		return nil, reasonf(ErrProtocol, "frame %d after the end marker's %d frames", seq, w.totalFrames)
	}
	var buf []byte
	if n := len(w.free); n > 0 {
		buf, w.free = w.free[n-1], w.free[:n-1]
	} else {
		buf = make([]byte, w.bufSize)
	}
	w.slots[seq] = buf
	return buf[:sealedLen], nil
}

// fill publishes the plaintext of a reserved frame.
func (w *reorderWindow) fill(seq uint64, plain []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.slots[seq] = plain
	w.filled[seq] = true
	if seq == w.next {
		w.cond.Broadcast()
	}
}

// end records a connection's verified END frame; all must agree.
func (w *reorderWindow) end(index int, totalBytes, totalFrames uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.endKnown && (totalBytes != w.totalBytes || totalFrames != w.totalFrames) {
		err := reasonf(ErrProtocol, "stream %d's end marker (%d bytes, %d frames) disagrees with another's (%d bytes, %d frames)",
			index, totalBytes, totalFrames, w.totalBytes, w.totalFrames)
		w.failLocked(err)
		return err
	}
	w.endKnown, w.totalBytes, w.totalFrames = true, totalBytes, totalFrames
	for seq := range w.slots {
		if seq >= totalFrames {
			err := reasonf(ErrProtocol, "frame %d beyond the end marker's %d frames", seq, totalFrames)
			w.failLocked(err)
			return err
		}
	}
	w.ended++
	w.active--
	w.checkStuckLocked()
	w.cond.Broadcast()
	return nil
}

// readerExited is called when a connection reader stops without an END frame.
func (w *reorderWindow) readerExited() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.active--
}

// checkStuckLocked fails the stream when it can never progress: every
// connection is either finished or waiting for window space, and the next
// frame is not in the window. A legitimate sender cannot cause this (the
// connection carrying the next frame is never blocked), so the frames beyond
// the window were sent without the ones before them.
func (w *reorderWindow) checkStuckLocked() {
	if w.err != nil || w.accepted < w.streams {
		return
	}
	stuck := 0 // readers that cannot proceed even after a wake-up
	for _, seq := range w.waiting {
		if seq >= w.next+w.window {
			stuck++
		}
	}
	if stuck < w.active {
		return
	}
	if _, have := w.slots[w.next]; have || w.completeLocked() {
		return
	}
	if w.active == 0 {
		w.failLocked(reasonf(ErrProtocol, "every stream ended but frame %d of %d never arrived", w.next, w.totalFrames))
		return
	}
	w.failLocked(reasonf(ErrOutOfWindow, "frames %d+ arrived but frame %d never did (window %d frames)", w.next+w.window, w.next, w.window))
}

func (w *reorderWindow) completeLocked() bool {
	return w.endKnown && w.ended == w.streams && w.next == w.totalFrames
}

// nextFrame waits for the next frame in order. done is true when the stream
// is complete (every END verified and every frame written).
func (w *reorderWindow) nextFrame() (plain []byte, done bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && !w.filled[w.next] && !w.completeLocked() {
		w.cond.Wait()
	}
	if w.err != nil {
		return nil, false, w.err
	}
	if w.completeLocked() {
		if uint64(w.written) != w.totalBytes {
			err := reasonf(ErrProtocol, "end marker says %d bytes, received %d", w.totalBytes, w.written)
			w.failLocked(err)
			return nil, false, err
		}
		return nil, true, nil
	}
	return w.slots[w.next], false, nil
}

// advance moves past the frame returned by nextFrame, recycling its buffer.
func (w *reorderWindow) advance(n int) {
	w.advanceRetained(n, [][]byte{w.frameBuf()})
}

func (w *reorderWindow) frameBuf() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.slots[w.next]
}

// advanceRetained moves past the frame returned by nextFrame, whose buffer the
// output may still hold, and recycles the buffers the output gave back.
func (w *reorderWindow) advanceRetained(n int, reusable [][]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.slots, w.next)
	delete(w.filled, w.next)
	for _, buf := range reusable {
		w.free = append(w.free, buf[:cap(buf)])
	}
	w.next++
	w.written += int64(n)
	w.checkStuckLocked()
	w.cond.Broadcast()
}

func (w *reorderWindow) writtenBytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

func (w *reorderWindow) String() string {
	return fmt.Sprintf("window{next %d, slots %d, active %d, waiting %d}", w.next, len(w.slots), w.active, len(w.waiting))
}
