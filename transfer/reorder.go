package transfer

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// reorderWindow holds frames that arrived ahead of the next one to write. A
// connection reserves a slot (by sequence number) before reading a frame's
// payload, and waits while the sequence is Window or more ahead of the next
// frame to write: that wait is the backpressure (the connection stops reading,
// TCP's window closes, the sender's writer blocks), and each one is counted
// as a stall (Stats.WindowStalls): a window too small for the path shows up
// there, and each one doubles the window up to MaxWindow. Memory is bounded by
// MaxWindow buffers of one frame each.
//
// It also keeps each lane's state across reconnections: the last frame
// received on it (what the sender need not send again), its keepalive
// counter, and whether its END frame arrived.
type reorderWindow struct {
	mu   sync.Mutex
	cond *sync.Cond

	window    uint64 // frames held ahead of next; doubles at a stall, up to maxWindow
	maxWindow uint64
	next      uint64            // next sequence to write
	slots     map[uint64][]byte // reserved (nil) or filled (plaintext)
	filled    map[uint64]bool
	free      [][]byte
	bufSize   int

	reconnectTimeout time.Duration
	lanes            map[uint16]*laneState
	ended            int            // lanes whose END frame was verified
	waiting          map[int]uint64 // lane index -> sequence it waits to reserve
	stalls           int64
	reconnects       int

	endKnown    bool
	totalBytes  uint64
	totalFrames uint64
	complete    bool // every frame written: no lane may join any more

	written int64
	err     error // first failure; everything stops
	onFail  func(err error)
}

// laneState is one lane (stream index) as the receiver sees it; a lane
// outlives its connections.
type laneState struct {
	conn   net.Conn      // current connection; nil while lost
	gen    int           // connections the lane has had
	exited chan struct{} // closed when the current connection's reader returned
	last   int64         // last data frame received on the lane (-1: none)
	lastKA int64         // last keepalive (-1: none)
	ended  bool          // END verified
	lost   *time.Timer   // running while the lane waits to be re-established
	// replaced: a new connection for the lane waits for this one's reader,
	// which must not keep waiting for window space.
	replaced bool
}

func newReorderWindow(window, maxWindow int, reconnectTimeout time.Duration, onFail func(error)) *reorderWindow {
	w := &reorderWindow{
		window:           uint64(window),
		maxWindow:        uint64(max(window, maxWindow)),
		slots:            make(map[uint64][]byte),
		filled:           make(map[uint64]bool),
		reconnectTimeout: reconnectTimeout,
		lanes:            make(map[uint16]*laneState),
		waiting:          make(map[int]uint64),
		onFail:           onFail,
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
	for _, l := range w.lanes {
		if l.lost != nil {
			l.lost.Stop()
		}
	}
	w.cond.Broadcast()
	go w.onFail(err)
}

func (w *reorderWindow) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// register admits an authenticated connection for lane h.index, a new lane
// or the re-established connection of a known one (whose previous
// connection, if the receiver has not noticed its loss yet, is closed and
// its reader awaited). It returns the lane's resume point (the sequence after
// the last frame received on it) and the connection's generation. ok is
// false (the caller closes conn) if the stream failed or is complete, or the
// chunk size differs from the first lane's.
func (w *reorderWindow) register(conn net.Conn, h hello, overhead int) (resume uint64, gen int, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
wait:
	for {
		if w.err != nil || w.complete {
			return 0, 0, false
		}
		l := w.lanes[h.index]
		if l == nil || l.conn == nil {
			break
		}
		old, exited := l.conn, l.exited
		select {
		case <-exited: // an ended lane's reader is gone; its connection was kept for the final ack
			old.Close()
			break wait
		default:
		}
		l.replaced = true
		w.cond.Broadcast()
		old.Close()
		w.mu.Unlock()
		<-exited
		w.mu.Lock()
	}
	size := int(h.chunk) + overhead
	if len(w.lanes) > 0 && size != w.bufSize {
		w.failLocked(reasonf(ErrProtocol, "stream %d announced chunk size %d, others %d", h.index, h.chunk, w.bufSize-overhead))
		return 0, 0, false
	}
	w.bufSize = size
	l := w.lanes[h.index]
	switch {
	case l == nil:
		l = &laneState{last: -1, lastKA: -1}
		w.lanes[h.index] = l
	default:
		// An ended lane comes back when its connection broke before the
		// final ack reached the sender: it gets the final ack on the new
		// (freshly authenticated) connection. Its reader accepts only the
		// same END again, so nothing can be added to the stream.
		w.reconnects++
		if l.lost != nil {
			l.lost.Stop()
			l.lost = nil
		}
	}
	l.conn = conn
	l.gen++
	l.replaced = false
	l.exited = make(chan struct{})
	w.cond.Broadcast()
	return uint64(l.last + 1), l.gen, true
}

// laneStart is what a new connection's reader continues from.
func (w *reorderWindow) laneStart(index uint16) (last, lastKA int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.lanes[index]
	return l.last, l.lastKA
}

// readerExited is called when a connection's reader returns. lost means the
// connection broke (not a protocol violation): the lane then has
// reconnectTimeout to be re-established before the stream fails.
func (w *reorderWindow) readerExited(index uint16, gen int, lost bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.lanes[index]
	if l.gen != gen {
		return
	}
	close(l.exited)
	if !lost || l.ended {
		return
	}
	l.conn = nil
	if w.err == nil {
		l.lost = time.AfterFunc(w.reconnectTimeout, func() {
			w.fail(reasonf(ErrConnLost, "stream %d was lost and not re-established within %v", index, w.reconnectTimeout))
		})
	}
	w.cond.Broadcast()
}

// reserve claims sequence seq for a frame of sealedLen bytes and returns a
// buffer for it, waiting while seq is beyond the window. It returns
// errLaneReplaced if a new connection for the lane arrives meanwhile.
func (w *reorderWindow) reserve(index int, seq uint64, sealedLen int) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sealedLen > w.bufSize {
		return nil, reasonf(ErrProtocol, "frame %d of %d bytes exceeds the announced chunk size", seq, sealedLen)
	}
	l := w.lanes[uint16(index)]
	if w.err == nil && seq >= w.next+w.window {
		w.stalls++
		// The window was too small for the path: grow it (at most to
		// maxWindow, the memory bound) rather than stall the next time.
		for w.window < w.maxWindow && seq >= w.next+w.window {
			w.window = min(2*w.window, w.maxWindow)
		}
		w.waiting[index] = seq
		for w.err == nil && !l.replaced && seq >= w.next+w.window {
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
	if l.replaced {
		return nil, errLaneReplaced
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

// unreserve gives back the slot of a frame whose payload never fully
// arrived (its connection broke): the sender sends it again.
func (w *reorderWindow) unreserve(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if buf, ok := w.slots[seq]; ok && !w.filled[seq] {
		delete(w.slots, seq)
		w.free = append(w.free, buf[:cap(buf)])
	}
}

// fill publishes the plaintext of a reserved frame received on lane index.
func (w *reorderWindow) fill(index uint16, seq uint64, plain []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.slots[seq] = plain
	w.filled[seq] = true
	w.lanes[index].last = int64(seq)
	if seq == w.next {
		w.cond.Broadcast()
	}
}

func (w *reorderWindow) keepalive(index uint16, seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lanes[index].lastKA = int64(seq)
}

// end records a lane's verified END frame; all must agree.
func (w *reorderWindow) end(index uint16, totalBytes, totalFrames uint64) error {
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
	if l := w.lanes[index]; !l.ended { // an ended lane's new connection repeats its END
		l.ended = true
		w.ended++
	}
	w.checkStuckLocked()
	w.cond.Broadcast()
	return nil
}

// checkStuckLocked fails the stream when it can never progress: every lane
// is either finished or connected and waiting for window space, and the next
// frame is not in the window. A legitimate sender cannot cause this (the lane
// carrying the next frame is never blocked; a lost lane may still bring it),
// so the frames beyond the window were sent without the ones before them.
func (w *reorderWindow) checkStuckLocked() {
	if w.err != nil || len(w.lanes) == 0 {
		return
	}
	active := 0
	for _, l := range w.lanes {
		if l.ended {
			continue
		}
		if l.conn == nil {
			return // lost: it may bring the next frame when it is back
		}
		active++
	}
	stuck := 0 // readers that cannot proceed even after a wake-up
	for _, seq := range w.waiting {
		if seq >= w.next+w.window {
			stuck++
		}
	}
	if stuck < active {
		return
	}
	if _, have := w.slots[w.next]; have || w.completeLocked() {
		return
	}
	if active == 0 {
		w.failLocked(reasonf(ErrProtocol, "every stream ended but frame %d of %d never arrived", w.next, w.totalFrames))
		return
	}
	w.failLocked(reasonf(ErrOutOfWindow, "frames %d+ arrived but frame %d never did (window %d frames)", w.next+w.window, w.next, w.window))
}

func (w *reorderWindow) completeLocked() bool {
	return w.endKnown && w.ended == len(w.lanes) && w.next == w.totalFrames
}

// nextFrame waits for the next frame in order. done is true when the stream
// is complete (every lane's END verified and every frame written); from then
// on no lane may join.
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
		w.complete = true
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

// connections lists the lanes' current connections.
func (w *reorderWindow) connections() map[uint16]net.Conn {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[uint16]net.Conn, len(w.lanes))
	for i, l := range w.lanes {
		if l.conn != nil {
			m[i] = l.conn
		}
	}
	return m
}

// counters returns what Stats reports about the window and the lanes.
func (w *reorderWindow) counters() (written int64, frames uint64, lanes, reconnects int, stalls int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written, w.totalFrames, len(w.lanes), w.reconnects, w.stalls
}

func (w *reorderWindow) writtenBytes() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

func (w *reorderWindow) String() string {
	return fmt.Sprintf("window{next %d, slots %d, lanes %d, waiting %d}", w.next, len(w.slots), len(w.lanes), len(w.waiting))
}
