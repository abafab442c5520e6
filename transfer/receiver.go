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

// Receive accepts opts.Streams authenticated connections on ln (strangers and
// wrong keys are dropped without affecting the transfer), reassembles the
// frames in order and writes the plaintext to w. It closes ln once every
// stream is in. It returns nil only when every frame and every connection's
// end marker was verified and written; any other outcome is an
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
		want:    expectation{session: sess.id, cipher: cipherIDs[sess.cipher], streams: uint16(opts.Streams), maxChunk: uint32(opts.MaxChunk)},
	}
	failed := make(chan struct{})
	var failOnce sync.Once
	r.win = newReorderWindow(opts.Window, opts.Streams, func() {
		failOnce.Do(func() { close(failed); r.stopHandshakes() })
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
	stats := Stats{Bytes: r.win.writtenBytes(), Duration: time.Since(start), Rejected: int(r.rejected.Load())}
	if err != nil {
		r.win.fail(err)
		r.readers.Wait() // connections are closed, so they return promptly
		return stats, &IncompleteError{Reason: err, Written: stats.Bytes}
	}
	stats.Frames = r.win.totalFrames
	r.sendAcks()
	return stats, nil
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
	if r.win.accepted < r.win.streams {
		why, _ := r.lastWhy.Load().(string)
		r.win.failLocked(reasonf(ErrTimeout, "%d of %d streams authenticated after %v; %d connections rejected (last: %s)",
			r.win.accepted, r.win.streams, r.opts.AcceptTimeout, r.rejected.Load(), why))
	}
}

// serve authenticates one connection and, if it is a legitimate stream,
// reads its frames until its END frame.
func (r *receiver) serve(conn net.Conn, sem chan struct{}) {
	h, confirm, err := serverHandshake(conn, r.keys, r.want, time.Now().Add(r.opts.HandshakeTimeout))
	r.untrackPending(conn)
	<-sem
	if err != nil {
		conn.Close()
		r.reject(err.Error())
		return
	}
	ok, all := r.win.register(conn, h, r.keys.data.Overhead())
	if !ok {
		conn.Close()
		r.reject("duplicate stream index or stream already failed")
		return
	}
	if all {
		r.stopHandshakes() // no one else may connect
	}
	if err := confirm(); err != nil {
		r.win.fail(reasonf(ErrConnLost, "stream %d: confirming handshake: %v", h.index, err))
		return
	}
	if err := r.readFrames(conn, int(h.index)); err != nil {
		r.win.fail(err)
		r.win.readerExited()
	}
}

// readFrames reads one connection's frames up to and including its END frame.
func (r *receiver) readFrames(conn net.Conn, index int) error {
	br := bufio.NewReaderSize(conn, 64<<10)
	overhead := r.keys.data.Overhead()
	header := make([]byte, headerSize)
	last := int64(-1)   // sequence numbers increase on each connection
	lastKA := int64(-1) // and so do its keepalives
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
		if h.typ == frameKeepalive {
			if err := r.readKeepalive(br, header, h, index, lastKA, overhead); err != nil {
				return err
			}
			lastKA = int64(h.seq)
			continue
		}
		if h.conn != 0 {
			return reasonf(ErrProtocol, "stream %d: data frame with connection field %d", index, h.conn)
		}
		if int64(h.seq) <= last {
			return reasonf(ErrDuplicate, "stream %d: frame %d after frame %d", index, h.seq, last)
		}
		buf, err := r.win.reserve(index, h.seq, int(h.sealedLen))
		if err != nil {
			return err
		}
		// Waiting for window space is backpressure, not idleness.
		conn.SetReadDeadline(time.Now().Add(r.opts.IdleTimeout))
		if _, err := io.ReadFull(br, buf); err != nil {
			return r.readErr(index, err)
		}
		plain, err := openFrame(r.keys.data, header, h, buf)
		if err != nil {
			return reasonf(ErrAuth, "stream %d: frame %d", index, h.seq)
		}
		r.win.fill(h.seq, plain)
		last = int64(h.seq)
	}
}

func (r *receiver) readEnd(br io.Reader, header []byte, h frameHeader, index int, last int64, overhead int) error {
	if int(h.conn) != index || int(h.sealedLen) != endPayload+overhead {
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
	return r.win.end(index, totalBytes, totalFrames)
}

// readKeepalive checks a keepalive: empty, for this connection, authentic,
// and newer than the last (a replayed one is refused).
func (r *receiver) readKeepalive(br io.Reader, header []byte, h frameHeader, index int, lastKA int64, overhead int) error {
	if int(h.conn) != index || int(h.sealedLen) != overhead {
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

func (r *receiver) readErr(index int, err error) error {
	if failed := r.win.failed(); failed != nil {
		return failed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return reasonf(ErrTimeout, "stream %d: no data for %v", index, r.opts.IdleTimeout)
	}
	return reasonf(ErrConnLost, "stream %d: %v", index, err)
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
	ack := ackMAC(r.keys, r.sess.id, r.win.totalBytes, r.win.totalFrames)
	for _, c := range r.win.conns {
		c.SetWriteDeadline(time.Now().Add(r.opts.HandshakeTimeout))
		c.Write(ack)
		c.Close()
	}
	r.readers.Wait()
}
