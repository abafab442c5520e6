package transfer

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// SendToReceiver dials opts.Streams connections to host:port, proves the
// session key on each, then streams r to the receiver until EOF. It returns
// only after the receiver has confirmed (authenticated ack) that it verified
// and wrote the whole stream. On error or cancellation every connection is
// closed promptly; a Read blocked inside r is left to the caller to unblock
// (e.g. by killing `zfs send`).
func SendToReceiver(ctx context.Context, host string, port int, sess Session, r io.Reader, opts SendOptions) (Stats, error) {
	opts = opts.withDefaults()
	if opts.Streams > MaxStreams {
		return Stats{}, fmt.Errorf("transfer: %d streams is more than %d", opts.Streams, MaxStreams)
	}
	keys, err := deriveKeys(sess)
	if err != nil {
		return Stats{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	start := time.Now()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	conns, err := dialAll(ctx, addr, keys, sess, opts)
	if err != nil {
		return Stats{}, err
	}
	defer closeConns(conns)
	stopClosing := context.AfterFunc(ctx, func() { closeConns(conns) })
	defer stopClosing()

	if f, ok := r.(*os.File); ok {
		GrowPipe(f) // fewer wakeups reading `zfs send` through a pipe
	}
	p := &sendPipeline{opts: opts, keys: keys, sess: sess, ctx: ctx, cancel: cancel}
	stats, err := p.run(r, conns)
	stats.Duration = time.Since(start)
	return stats, err
}

// dialAll opens and authenticates every connection before any data is sent,
// so the receiver has accepted all of them when the first frame arrives.
func dialAll(ctx context.Context, addr string, keys sessionKeys, sess Session, opts SendOptions) ([]net.Conn, error) {
	conns := make([]net.Conn, opts.Streams)
	errs := make([]error, opts.Streams)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = dialOne(ctx, addr, keys, sess, opts, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeConns(conns)
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("transfer: connecting to %s: %w", addr, err)
	}
	return conns, nil
}

func dialOne(ctx context.Context, addr string, keys sessionKeys, sess Session, opts SendOptions, index int) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(opts.DialTimeout))
	h := hello{cipher: cipherIDs[sess.cipher], streams: uint16(opts.Streams), index: uint16(index), chunk: uint32(opts.ChunkSize), session: sess.id}
	if err := clientHandshake(conn, keys, h); err != nil {
		conn.Close()
		return nil, fmt.Errorf("stream %d: %w", index, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}

func closeConns(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// sendPipeline: every connection has one goroutine that asks for the next
// chunk of r in its own buffer, seals it in place and writes it. Keeping a
// chunk on one goroutine from read to write keeps it in that core's cache, and
// a slow connection simply takes fewer chunks. Each connection carries
// increasing sequence numbers; memory is one buffer per connection. The reads
// themselves are done, in order, by one reader goroutine that is never waited
// for: a read blocked in a quiet `zfs send` must not keep a failed transfer
// from returning (the caller ends that read by killing the send).
type sendPipeline struct {
	opts   SendOptions
	keys   sessionKeys
	sess   Session
	ctx    context.Context
	cancel context.CancelCauseFunc

	sent atomic.Int64 // payload bytes written to connections

	reads   chan readRequest
	in      io.Reader // used by the reader goroutine only
	limiter *tokenBucket
	inMu    sync.Mutex // guards the fields below
	nextSeq uint64
	total   uint64 // bytes read so far
	eof     bool   // clean end of r: nextSeq and total are final

	errOnce sync.Once
	err     error
}

// fail records the first error and cancels everything else.
func (p *sendPipeline) fail(err error) {
	p.errOnce.Do(func() {
		p.err = err
		p.cancel(err)
	})
}

func (p *sendPipeline) run(r io.Reader, conns []net.Conn) (Stats, error) {
	p.in = r
	p.limiter = newTokenBucket(p.opts.BandwidthLimit, p.opts.ChunkSize)
	p.reads = make(chan readRequest)
	go p.reader()
	progress := startProgress(p.opts.Progress, p.opts.ProgressInterval, &p.sent)
	defer progress.stop()

	cws := make([]*connWriter, len(conns))
	for i, c := range conns {
		cws[i] = &connWriter{conn: c, index: i, last: time.Now(), ack: make(chan ackResult, 1)}
		go p.watch(cws[i])
	}
	stopKeepalive := p.keepalive(cws)
	var writers sync.WaitGroup
	for _, cw := range cws {
		writers.Add(1)
		go func() {
			defer writers.Done()
			if err := p.stream(cw); err != nil {
				p.fail(err)
			}
		}()
	}
	writers.Wait()
	stopKeepalive()
	progress.stop()

	stats := Stats{Bytes: p.sent.Load()}
	if p.err != nil {
		return stats, fmt.Errorf("transfer: send failed after %d bytes: %w", stats.Bytes, p.err)
	}
	stats.Frames = p.nextSeq
	return stats, nil
}

type readRequest struct {
	buf   []byte
	reply chan readReply // buffered: the reader never blocks on it
}

type readReply struct {
	seq uint64
	n   int
	ok  bool
}

// reader serves read requests in arrival order until the input ends or the
// transfer stops.
func (p *sendPipeline) reader() {
	for {
		select {
		case req := <-p.reads:
			seq, n, ok := p.readChunk(req.buf)
			req.reply <- readReply{seq, n, ok}
		case <-p.ctx.Done():
			return
		}
	}
}

// readChunk reads the next chunk into buf. ok is false at the clean end of
// the input (then the totals are final) and on failure (p.err is set, so no
// END frame can claim a partial stream).
func (p *sendPipeline) readChunk(buf []byte) (seq uint64, n int, ok bool) {
	p.inMu.Lock()
	eof := p.eof
	p.inMu.Unlock()
	if eof || p.ctx.Err() != nil {
		return 0, 0, false
	}
	n, err := io.ReadFull(p.in, buf)
	if n > 0 {
		if werr := p.limiter.wait(p.ctx, n); werr != nil {
			return 0, 0, false
		}
	}
	p.inMu.Lock()
	defer p.inMu.Unlock()
	if n > 0 {
		seq = p.nextSeq
		p.nextSeq++
		p.total += uint64(n)
	}
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		p.eof = true
	case err != nil:
		p.fail(fmt.Errorf("reading the input stream: %w", err))
		return 0, 0, false
	}
	return seq, n, n > 0
}

// next has the reader fill buf with the next chunk; ok as in readChunk. When
// the transfer stops it returns at once, leaving buf to a read in progress.
func (p *sendPipeline) next(buf []byte) (seq uint64, n int, ok bool) {
	req := readRequest{buf: buf, reply: make(chan readReply, 1)}
	select {
	case p.reads <- req:
	case <-p.ctx.Done():
		return 0, 0, false
	}
	select {
	case r := <-req.reply:
		return r.seq, r.n, r.ok
	case <-p.ctx.Done():
		return 0, 0, false
	}
}

// keepalive sends a keepalive frame on every connection that has been quiet
// for opts.Keepalive (while `zfs send` produces nothing), so the receiver's
// idle timeout measures a dead sender, not a slow source. It returns a stop func.
func (p *sendPipeline) keepalive(cws []*connWriter) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(p.opts.Keepalive / 2)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				for _, cw := range cws {
					if err := cw.keepalive(p.keys, p.opts.Keepalive); err != nil {
						p.fail(p.connErr(cw.index, err))
					}
				}
			case <-done:
				return
			case <-p.ctx.Done():
				return
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// connWriter serialises one connection's writes between its stream goroutine
// and the keepalive ticker.
type connWriter struct {
	conn  net.Conn
	index int

	mu    sync.Mutex
	last  time.Time // end of the last write
	ended bool      // END written: nothing may follow it
	kaSeq uint64    // keepalives sent (their sequence numbers)

	ack chan ackResult // from watch
}

func (w *connWriter) endWritten() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended
}

func (w *connWriter) write(frame []byte, end bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.conn.Write(frame)
	w.last, w.ended = time.Now(), end
	return err
}

// keepalive writes an empty authenticated frame if the connection has been
// quiet for every; one busy writing (or blocked by backpressure) is skipped.
func (w *connWriter) keepalive(keys sessionKeys, every time.Duration) error {
	if !w.mu.TryLock() {
		return nil
	}
	defer w.mu.Unlock()
	if w.ended || time.Since(w.last) < every {
		return nil
	}
	buf := make([]byte, headerSize+keys.data.Overhead())
	frame := sealFrame(keys.data, buf, frameHeader{seq: w.kaSeq, typ: frameKeepalive, conn: uint16(w.index)}, 0)
	w.kaSeq++
	_, err := w.conn.Write(frame)
	w.last = time.Now()
	return err
}

// stream sends chunks on one connection until the input ends, then its END
// frame, then waits for the receiver's ack.
func (p *sendPipeline) stream(cw *connWriter) error {
	index := cw.index
	buf := make([]byte, headerSize+p.opts.ChunkSize+p.keys.data.Overhead())
	for {
		seq, n, ok := p.next(buf[headerSize : headerSize+p.opts.ChunkSize])
		if !ok {
			break // buf may still be filled by an abandoned read: not reused
		}
		frame := sealFrame(p.keys.data, buf, frameHeader{seq: seq, typ: frameData}, n)
		if err := cw.write(frame, false); err != nil {
			return p.connErr(index, err)
		}
		p.sent.Add(int64(n))
	}
	p.inMu.Lock()
	eof, totalBytes, totalFrames := p.eof, p.total, p.nextSeq
	p.inMu.Unlock()
	if cause := context.Cause(p.ctx); cause != nil {
		return cause
	}
	if !eof {
		return errors.New("input stopped without an end") // not reached: next fails first
	}
	overhead := p.keys.data.Overhead()
	end := make([]byte, headerSize+endPayload+overhead)
	copy(end[headerSize:], endMarker(totalBytes, totalFrames))
	end = sealFrame(p.keys.data, end, frameHeader{seq: totalFrames, typ: frameEnd, conn: uint16(index)}, endPayload)
	if err := cw.write(end, true); err != nil {
		return p.connErr(index, err)
	}
	timeout := time.NewTimer(p.opts.AckTimeout)
	defer timeout.Stop()
	var ack ackResult
	select {
	case ack = <-cw.ack:
	case <-timeout.C:
		return fmt.Errorf("%w (stream %d): no answer in %v", ErrNotConfirmed, index, p.opts.AckTimeout)
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	if ack.err != nil {
		return fmt.Errorf("%w (stream %d): %v", ErrNotConfirmed, index, ack.err)
	}
	if !hmac.Equal(ack.mac, ackMAC(p.keys, p.sess.id, totalBytes, totalFrames)) {
		return fmt.Errorf("%w (stream %d): bad ack", ErrNotConfirmed, index)
	}
	return nil
}

type ackResult struct {
	mac []byte
	err error
}

// watch reads the one thing the receiver ever sends after the handshake: its
// final ack. Anything ending the connection before our END frame went out
// means the receiver gave up (it failed, or was killed), and the transfer
// fails at once instead of when the next chunk is written, which could be
// long if `zfs send` is quiet.
func (p *sendPipeline) watch(cw *connWriter) {
	mac := make([]byte, proofSize)
	_, err := io.ReadFull(cw.conn, mac)
	cw.ack <- ackResult{mac, err}
	if err != nil && !cw.endWritten() {
		p.fail(p.connErr(cw.index, fmt.Errorf("the receiver closed the connection: %v", err)))
	}
}

func (p *sendPipeline) connErr(index int, err error) error {
	if p.ctx.Err() != nil {
		return context.Cause(p.ctx)
	}
	return fmt.Errorf("%w (stream %d): %v", ErrConnLost, index, err)
}
