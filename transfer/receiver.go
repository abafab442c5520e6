package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxPendingHandshakes bounds concurrent unauthenticated connections, so a
// flood of strangers cannot exhaust memory.
const maxPendingHandshakes = 64

// Receive accepts authenticated connections on ln (strangers and wrong keys
// are dropped without affecting the transfer), as many as the sender opens
// (at most opts.Streams), reassembles the frames in order and writes the
// plaintext to w. A lane whose connection breaks may be re-established by the
// sender within opts.ReconnectTimeout: it proves the session key again and
// learns which frames the lane had delivered, and the frames after them come
// again (each sequence number is still accepted once only). It closes ln when
// the stream is complete or failed. It returns nil only when every frame and
// every lane's end marker was verified and written; any other outcome is an
// *IncompleteError (errors.Is(err, ErrIncomplete)) and what was written to w
// must be discarded. On failure Receive does not wait for a Write to w that is
// blocked (the caller unblocks it, e.g. by killing the reading process).
func Receive(ctx context.Context, ln net.Listener, sess Session, w io.Writer, opts ReceiveOptions) (Stats, error) {
	opts = opts.withDefaults()
	if opts.Streams > MaxStreams {
		return Stats{}, fmt.Errorf("transfer: %d streams is more than %d", opts.Streams, MaxStreams)
	}
	keys, err := deriveKeys(sess)
	if err != nil {
		return Stats{}, err
	}
	r := &receiver{
		opts:    opts,
		keys:    keys,
		sess:    sess,
		ln:      ln,
		pending: make(map[net.Conn]struct{}),
		want:    expectation{session: sess.id, cipher: cipherIDs[sess.cipher], maxStreams: uint16(opts.Streams), maxChunk: uint32(opts.MaxChunk)},
	}
	failed := make(chan struct{})
	var failOnce sync.Once
	r.win = newReorderWindow(opts.Window, opts.MaxWindow, opts.ReconnectTimeout, func(error) {
		failOnce.Do(func() { close(failed); r.stopHandshakes(); r.abort() })
	})
	start := time.Now()
	stopCancel := context.AfterFunc(ctx, func() { r.win.fail(fmt.Errorf("cancelled: %w", context.Cause(ctx))) })
	defer stopCancel()
	acceptTimer := time.AfterFunc(opts.AcceptTimeout, r.acceptTimedOut)
	defer acceptTimer.Stop()

	var progressBytes atomic.Int64
	progress := startProgress(opts.Progress, opts.ProgressInterval, &progressBytes)
	defer progress.stop()

	go r.acceptLoop()
	writeDone := make(chan error, 1)
	go func() { writeDone <- r.writeInOrder(w, &progressBytes) }()

	select {
	case err = <-writeDone:
	case <-failed:
		err = r.win.failed()
	}
	progress.stop()
	stats := r.stats(start)
	if err != nil {
		r.win.fail(err)
		r.readers.Wait() // connections are closed, so they return promptly
		return stats, &IncompleteError{Reason: err, Written: stats.Bytes}
	}
	r.stopHandshakes()
	r.sendAcks()
	return stats, nil
}

func (r *receiver) stats(start time.Time) Stats {
	written, frames, lanes, reconnects, stalls := r.win.counters()
	return Stats{Bytes: written, Frames: frames, Duration: time.Since(start), Rejected: int(r.rejected.Load()),
		Streams: lanes, Reconnects: reconnects, WindowStalls: stalls}
}

type receiver struct {
	opts ReceiveOptions
	keys sessionKeys
	sess Session
	ln   net.Listener
	want expectation
	win  *reorderWindow

	readers  sync.WaitGroup
	rejected atomic.Int32

	pendingMu sync.Mutex
	pending   map[net.Conn]struct{} // connections still in their handshake
	closed    bool                  // no more handshakes wanted
	lastWhy   atomic.Value          // string: why the last stranger was dropped
}

func (r *receiver) acceptLoop() {
	sem := make(chan struct{}, maxPendingHandshakes)
	for {
		conn, err := r.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed: all streams in, or failed
		}
		select {
		case sem <- struct{}{}:
		default:
			conn.Close() // too many strangers at once
			r.reject("too many pending handshakes")
			continue
		}
		if !r.trackPending(conn) {
			conn.Close()
			<-sem
			continue
		}
		r.readers.Add(1)
		go func() {
			defer r.readers.Done()
			r.serve(conn, sem)
		}()
	}
}

func (r *receiver) trackPending(c net.Conn) bool {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	if r.closed {
		return false
	}
	r.pending[c] = struct{}{}
	return true
}

func (r *receiver) untrackPending(c net.Conn) {
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	delete(r.pending, c)
}

// stopHandshakes closes the listener and drops strangers still mid-handshake,
// so they cannot delay the end of Receive.
func (r *receiver) stopHandshakes() {
	r.ln.Close()
	r.pendingMu.Lock()
	defer r.pendingMu.Unlock()
	r.closed = true
	for c := range r.pending {
		c.Close()
	}
}

func (r *receiver) reject(why string) {
	r.rejected.Add(1)
	r.lastWhy.Store(why)
}

func (r *receiver) acceptTimedOut() {
	r.win.mu.Lock()
	defer r.win.mu.Unlock()
	if len(r.win.lanes) == 0 {
		why, _ := r.lastWhy.Load().(string)
		r.win.failLocked(reasonf(ErrTimeout, "no stream authenticated after %v; %d connections rejected (last: %s)",
			r.opts.AcceptTimeout, r.rejected.Load(), why))
	}
}

// abort tells the sender on every connection that the receiver gave up (so
// it does not try to reconnect), then closes them, which ends their readers.
func (r *receiver) abort() {
	for index, c := range r.win.connections() {
		go func() {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(reverseMsg(r.keys, r.sess.id, index, revAbort, 0))
			c.Close()
		}()
	}
}

// serve authenticates one connection and, if it is a legitimate lane (new or
// re-established), reads its frames until its END frame.
func (r *receiver) serve(conn net.Conn, sem chan struct{}) {
	h, confirm, err := serverHandshake(conn, r.keys, r.want, time.Now().Add(r.opts.HandshakeTimeout))
	r.untrackPending(conn)
	<-sem
	if err != nil {
		conn.Close()
		r.reject(err.Error())
		return
	}
	resume, gen, ok := r.win.register(conn, h, r.keys.data.Overhead())
	if !ok {
		conn.Close()
		r.reject("transfer over, or chunk size differs")
		return
	}
	err = confirm(resume)
	if err == nil {
		err = r.readFrames(conn, h.index)
	}
	lost := errors.Is(err, errLaneLost)
	if err != nil && !lost {
		r.win.fail(err)
	}
	if lost {
		conn.Close()
	}
	r.win.readerExited(h.index, gen, lost)
}

// readFrames reads one connection's frames up to and including its lane's
// END frame, acknowledging each data frame as it is held. A broken
// connection returns an error matching errLaneLost.
func (r *receiver) readFrames(conn net.Conn, index uint16) error {
	br := bufio.NewReaderSize(conn, 64<<10)
	overhead := r.keys.data.Overhead()
	header := make([]byte, headerSize)
	last, lastKA := r.win.laneStart(index) // sequence numbers increase on each lane, across its connections
	for {
		conn.SetReadDeadline(time.Now().Add(r.opts.IdleTimeout))
		if _, err := io.ReadFull(br, header); err != nil {
			return r.readErr(index, err)
		}
		h, ok := parseHeader(header)
		if !ok || int(h.sealedLen) < overhead {
			return reasonf(ErrProtocol, "stream %d: malformed frame header", index)
		}
		if h.typ == frameEnd {
			return r.readEnd(br, header, h, index, last, overhead)
		}
		if h.typ == frameAbort {
			return r.readAbort(br, header, h, index, overhead)
		}
		if h.typ == frameKeepalive {
			if err := r.readKeepalive(br, header, h, index, lastKA, overhead); err != nil {
				return err
			}
			lastKA = int64(h.seq)
			r.win.keepalive(index, h.seq)
			continue
		}
		if h.conn != 0 {
			return reasonf(ErrProtocol, "stream %d: data frame with connection field %d", index, h.conn)
		}
		if int64(h.seq) <= last {
			return reasonf(ErrDuplicate, "stream %d: frame %d after frame %d", index, h.seq, last)
		}
		buf, err := r.win.reserve(int(index), h.seq, int(h.sealedLen))
		if err != nil {
			return err
		}
		// Waiting for window space is backpressure, not idleness.
		conn.SetReadDeadline(time.Now().Add(r.opts.IdleTimeout))
		if _, err := io.ReadFull(br, buf); err != nil {
			r.win.unreserve(h.seq)
			return r.readErr(index, err)
		}
		plain, err := openFrame(r.keys.data, header, h, buf)
		if err != nil {
			return reasonf(ErrAuth, "stream %d: frame %d", index, h.seq)
		}
		r.win.fill(index, h.seq, plain)
		last = int64(h.seq)
		if _, err := conn.Write(reverseMsg(r.keys, r.sess.id, index, revReceived, h.seq+1)); err != nil {
			return r.readErr(index, err)
		}
	}
}

func (r *receiver) readEnd(br io.Reader, header []byte, h frameHeader, index uint16, last int64, overhead int) error {
	if h.conn != index || int(h.sealedLen) != endPayload+overhead {
		return reasonf(ErrProtocol, "stream %d: malformed end marker", index)
	}
	buf := make([]byte, h.sealedLen)
	if _, err := io.ReadFull(br, buf); err != nil {
		return r.readErr(index, err)
	}
	plain, err := openFrame(r.keys.data, header, h, buf)
	if err != nil {
		return reasonf(ErrAuth, "stream %d: end marker", index)
	}
	totalBytes, totalFrames := beUint64(plain[0:8]), beUint64(plain[8:16])
	if h.seq != totalFrames || int64(totalFrames) <= last {
		return reasonf(ErrProtocol, "stream %d: end marker for %d frames after frame %d", index, totalFrames, last)
	}
	if err := r.win.end(index, totalBytes, totalFrames); err != nil {
		return err
	}
	if testHookLaneEnded != nil {
		testHookLaneEnded(r.sess.id, index)
	}
	return nil
}

// testHookLaneEnded, set by tests only, is told when a lane's END frame was
// verified: a test can act right after it, not after a delay.
var testHookLaneEnded func(session [sessionIDSize]byte, index uint16)

// readKeepalive checks a keepalive: empty, for this connection, authentic,
// and newer than the last (a replayed one is refused).
func (r *receiver) readKeepalive(br io.Reader, header []byte, h frameHeader, index uint16, lastKA int64, overhead int) error {
	if h.conn != index || int(h.sealedLen) != overhead {
		return reasonf(ErrProtocol, "stream %d: malformed keepalive", index)
	}
	buf := make([]byte, h.sealedLen)
	if _, err := io.ReadFull(br, buf); err != nil {
		return r.readErr(index, err)
	}
	if _, err := openFrame(r.keys.data, header, h, buf); err != nil {
		return reasonf(ErrAuth, "stream %d: keepalive %d", index, h.seq)
	}
	if int64(h.seq) <= lastKA {
		return reasonf(ErrDuplicate, "stream %d: keepalive %d after keepalive %d", index, h.seq, lastKA)
	}
	return nil
}

// errLaneLost marks a connection that broke (EOF, reset) rather than
// misbehaved: its lane may be re-established.
var errLaneLost = errors.New("connection lost")

// errLaneReplaced: a new connection of the same lane took over.
var errLaneReplaced = fmt.Errorf("%w: replaced by a new connection", errLaneLost)

// readAbort checks the sender's abort: it gave up, so its lanes will not
// come back.
func (r *receiver) readAbort(br io.Reader, header []byte, h frameHeader, index uint16, overhead int) error {
	if h.conn != index || int(h.sealedLen) != overhead || h.seq != 0 {
		return reasonf(ErrProtocol, "stream %d: malformed abort", index)
	}
	buf := make([]byte, h.sealedLen)
	if _, err := io.ReadFull(br, buf); err != nil {
		return r.readErr(index, err)
	}
	if _, err := openFrame(r.keys.data, header, h, buf); err != nil {
		return reasonf(ErrAuth, "stream %d: abort", index)
	}
	return reasonf(ErrConnLost, "stream %d: the sender gave up", index)
}

func (r *receiver) readErr(index uint16, err error) error {
	if failed := r.win.failed(); failed != nil {
		return failed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return reasonf(ErrTimeout, "stream %d: no data for %v", index, r.opts.IdleTimeout)
	}
	return fmt.Errorf("%w: stream %d: %v", errLaneLost, index, err)
}

// retainingWriter is an output that may keep referencing the buffers it is
// given (spliceWriter); it returns the ones that are safe to reuse.
type retainingWriter interface {
	writeRetained(b []byte) (reusable [][]byte, err error)
}

// writeInOrder writes frames to w in sequence order until the stream is complete.
func (r *receiver) writeInOrder(w io.Writer, progress *atomic.Int64) error {
	rw, retains := w.(retainingWriter)
	for {
		plain, done, err := r.win.nextFrame()
		if err != nil || done {
			return err
		}
		if retains {
			reusable, err := rw.writeRetained(plain)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrOutput, err)
			}
			r.win.advanceRetained(len(plain), reusable)
		} else {
			if _, err := w.Write(plain); err != nil {
				return fmt.Errorf("%w: %v", ErrOutput, err)
			}
			r.win.advance(len(plain))
		}
		progress.Add(int64(len(plain)))
	}
}

// sendAcks tells the sender, on every connection, that the whole stream was
// verified and written.
func (r *receiver) sendAcks() {
	ack := finalMsg(r.keys, r.sess.id, r.win.totalBytes, r.win.totalFrames)
	for _, c := range r.win.connections() {
		c.SetWriteDeadline(time.Now().Add(r.opts.HandshakeTimeout))
		c.Write(ack)
		c.Close()
	}
	r.readers.Wait()
}
