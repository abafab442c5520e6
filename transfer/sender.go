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

	"zcloud/ratelimit"
)

// SendToReceiver dials connections (lanes) to host:port, proves the session
// key on each, then streams r to the receiver until EOF. With opts.Streams 0
// it starts with DefaultStreams lanes and opens more while throughput grows
// (up to opts.MaxStreams). A lane whose connection breaks is re-dialled (with
// backoff, opts.ReconnectAttempts times) and the frames the receiver had not
// acknowledged on it are sent again. It returns only after the receiver has
// confirmed (authenticated ack) that it verified and wrote the whole stream.
// On error or cancellation every connection is closed promptly; a Read
// blocked inside r is left to the caller to unblock (e.g. by killing `zfs
// send`).
func SendToReceiver(ctx context.Context, host string, port int, sess Session, r io.Reader, opts SendOptions) (Stats, error) {
	opts = opts.withDefaults()
	if opts.MaxStreams > MaxStreams {
		return Stats{}, fmt.Errorf("transfer: %d streams is more than %d", opts.MaxStreams, MaxStreams)
	}
	keys, err := deriveKeys(sess)
	if err != nil {
		return Stats{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	p := &sendPipeline{opts: opts, keys: keys, sess: sess, ctx: ctx, cancel: cancel,
		addr: net.JoinHostPort(host, strconv.Itoa(port)), eofc: make(chan struct{})}
	p.pool = newFramePool(opts.SendWindow, headerSize+opts.ChunkSize+keys.data.Overhead())
	start := time.Now()
	initial := opts.Streams
	if initial == 0 {
		initial = min(DefaultStreams, opts.MaxStreams)
	}
	lanes, err := p.dialLanes(initial)
	if err != nil {
		return Stats{}, err
	}
	p.rtt = time.Since(start) / 2 // the handshake is two round trips
	// A failed or cancelled transfer tells the receiver before returning, so
	// no goroutine of this send outlives it.
	aborted := make(chan struct{})
	stopAborting := context.AfterFunc(ctx, func() { defer close(aborted); p.abortAll() })
	defer func() {
		if !stopAborting() {
			<-aborted
		}
	}()
	defer p.closeAll()

	if f, ok := r.(*os.File); ok {
		GrowPipe(f) // fewer wakeups reading `zfs send` through a pipe
	}
	stats, err := p.run(r, lanes)
	stats.Duration = time.Since(start)
	return stats, err
}

// dialLanes opens and authenticates the first n lanes before any data is
// sent.
func (p *sendPipeline) dialLanes(n int) ([]*lane, error) {
	lanes := make([]*lane, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lanes[i], errs[i] = p.newLane(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		var wg sync.WaitGroup
		for _, l := range lanes {
			if l != nil {
				wg.Add(1)
				go func() { defer wg.Done(); p.abort(l.cur.Load().conn, l.index) }()
			}
		}
		wg.Wait()
		if p.ctx.Err() != nil {
			return nil, context.Cause(p.ctx)
		}
		return nil, fmt.Errorf("transfer: connecting to %s: %w", p.addr, err)
	}
	return lanes, nil
}

func (p *sendPipeline) newLane(index int) (*lane, error) {
	conn, resume, err := p.dial(p.ctx, index)
	if err != nil {
		return nil, err
	}
	if resume != 0 {
		conn.Close()
		return nil, fmt.Errorf("%w: stream %d: receiver already has frames of a new stream", ErrHandshake, index)
	}
	l := &lane{p: p, index: index, last: time.Now(), final: make(chan ackResult, 1)}
	l.cur.Store(&laneConn{conn: conn})
	return l, nil
}

// dial connects lane index and proves the session key; resume is the
// sequence after the last frame the receiver holds from this lane.
func (p *sendPipeline) dial(ctx context.Context, index int) (net.Conn, uint64, error) {
	d := net.Dialer{Timeout: p.opts.DialTimeout, Control: tuneSocket(p.opts.ChunkSize)}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, 0, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(p.opts.DialTimeout))
	h := hello{cipher: cipherIDs[p.sess.cipher], streams: uint16(p.opts.MaxStreams), index: uint16(index), chunk: uint32(p.opts.ChunkSize), session: p.sess.id}
	resume, err := clientHandshake(conn, p.keys, h)
	if err != nil {
		conn.Close()
		return nil, 0, fmt.Errorf("stream %d: %w", index, err)
	}
	conn.SetDeadline(time.Time{})
	return conn, resume, nil
}

// sendPipeline: every lane has one goroutine that asks for the next chunk of
// r in a buffer from the pool, seals it in place and writes it; the buffer
// stays with the lane until the receiver acknowledges the frame (so it can be
// sent again on a re-established connection). Keeping a chunk on one
// goroutine from read to write keeps it in that core's cache, and a slow
// connection simply takes fewer chunks. Each lane carries increasing sequence
// numbers. The reads themselves are done, in order, by one reader goroutine
// that is never waited for: a read blocked in a quiet `zfs send` must not keep
// a failed transfer from returning (the caller ends that read by killing the
// send).
type sendPipeline struct {
	opts   SendOptions
	keys   sessionKeys
	sess   Session
	ctx    context.Context
	cancel context.CancelCauseFunc
	addr   string
	rtt    time.Duration // estimated from the first handshakes
	pool   *framePool

	sent       atomic.Int64 // payload bytes written to connections (first time)
	reconnects atomic.Int32
	// Nanoseconds lanes spent in connection writes and waiting for acks to
	// free a frame buffer (waiting on the network), and waiting for the
	// reader (on the input and its one goroutine): what automatic streams
	// use to tell a network-bound path from a CPU-bound one.
	netWait, readerWait atomic.Int64

	lanesMu sync.Mutex
	lanes   []*lane
	writers sync.WaitGroup

	reads   chan readRequest
	in      io.Reader // used by the reader goroutine only
	limiter *ratelimit.Bucket
	inMu    sync.Mutex // guards the fields below
	nextSeq uint64
	total   uint64 // bytes read so far
	eof     bool   // clean end of r: nextSeq and total are final
	eofc    chan struct{}

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

// abort tells the receiver on conn that this sender gave up (so it need not
// wait for lane index to come back), then closes conn. A write blocked on
// conn is cut short by the deadline.
//
// The abort queued on conn is read only after the data ahead of it, which a
// slow `zfs receive` may take minutes to drain, and a write that found the
// socket buffer full never got in at all. So it is also said on a fresh
// connection of the lane: its handshake replaces conn on the receiver at
// once, and the abort is the first frame there.
func (p *sendPipeline) abort(conn net.Conn, index int) {
	frame := p.abortFrame(index)
	conn.SetWriteDeadline(time.Now().Add(abortWriteTimeout))
	conn.Write(frame)
	conn.Close()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), abortDialTimeout)
	defer cancel()
	fresh, _, err := p.dial(ctx, index)
	if err != nil {
		return // the receiver is gone or has given up already
	}
	fresh.SetWriteDeadline(time.Now().Add(abortWriteTimeout))
	fresh.Write(frame)
	fresh.Close()
}

// How long an abort may take, per lane (lanes abort in parallel): it runs
// only when the transfer already failed or was cancelled.
const (
	abortWriteTimeout = 250 * time.Millisecond
	abortDialTimeout  = time.Second
)

func (p *sendPipeline) abortFrame(index int) []byte {
	buf := make([]byte, headerSize+p.keys.data.Overhead())
	return sealFrame(p.keys.data, buf, frameHeader{typ: frameAbort, conn: uint16(index)}, 0)
}

// abortAll aborts every lane, in parallel, once the transfer failed or was
// cancelled.
func (p *sendPipeline) abortAll() {
	p.lanesMu.Lock()
	lanes := append([]*lane(nil), p.lanes...)
	p.lanesMu.Unlock()
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Add(1)
		go func() { defer wg.Done(); p.abort(l.cur.Load().conn, l.index) }()
	}
	wg.Wait()
}

func (p *sendPipeline) closeAll() {
	p.lanesMu.Lock()
	defer p.lanesMu.Unlock()
	for _, l := range p.lanes {
		l.cur.Load().conn.Close()
	}
}

func (p *sendPipeline) run(r io.Reader, lanes []*lane) (Stats, error) {
	p.in = r
	p.limiter = ratelimit.New(p.opts.BandwidthLimit, int64(p.opts.ChunkSize))
	p.reads = make(chan readRequest)
	go p.reader()
	progress := startProgress(p.opts.Progress, p.opts.ProgressInterval, &p.sent)
	defer progress.stop()

	for _, l := range lanes {
		p.start(l)
	}
	stopKeepalive := p.keepalive()
	growDone := make(chan struct{})
	go func() {
		defer close(growDone)
		p.grow()
	}()
	<-growDone // it adds lanes (writers.Add) only until it returns
	p.writers.Wait()
	stopKeepalive()
	progress.stop()

	p.lanesMu.Lock()
	stats := Stats{Bytes: p.sent.Load(), Streams: len(p.lanes), Reconnects: int(p.reconnects.Load()), SendStalls: p.pool.stalls.Load()}
	p.lanesMu.Unlock()
	if p.err != nil {
		return stats, fmt.Errorf("transfer: send failed after %d bytes: %w", stats.Bytes, p.err)
	}
	stats.Frames = p.nextSeq
	return stats, nil
}

// start adds a lane and runs its writer and the reader of its acks.
func (p *sendPipeline) start(l *lane) {
	p.lanesMu.Lock()
	p.lanes = append(p.lanes, l)
	p.lanesMu.Unlock()
	go l.watch(l.cur.Load())
	p.writers.Add(1)
	go func() {
		defer p.writers.Done()
		if err := l.stream(); err != nil {
			p.fail(err)
		}
	}()
}

// growSample is what automatic streams observe over one interval.
type growSample struct {
	rate                float64       // payload bytes per second
	netWait, readerWait time.Duration // summed over the lanes
}

// growDecision decides, from the best rate so far and the last interval,
// whether throughput still grows (by 10 %) and whether to open one more lane
// for it. A lane helps only when lanes wait on the network; when they wait
// on the reader (the input or the CPU is the limit, as on loopback), one
// more connection only adds work, so none is added.
func growDecision(best float64, s growSample) (grew, add bool) {
	grew = s.rate > best*1.1
	return grew, grew && s.netWait > s.readerWait
}

// grow implements automatic streams: every interval (at least a second, and
// several round trips) it compares the throughput with the best so far and
// opens one more lane while it still grows by 10 % and the lanes wait on the
// network rather than on the reader (growDecision), up to MaxStreams. It
// stops after three intervals without a new lane, at the end of the input,
// or when a new connection fails.
func (p *sendPipeline) grow() {
	if p.opts.Streams > 0 {
		return
	}
	interval := max(time.Second, 8*p.rtt)
	t := time.NewTicker(interval)
	defer t.Stop()
	var best float64
	last, lastAt := p.sent.Load(), time.Now()
	lastNet, lastReader := p.netWait.Load(), p.readerWait.Load()
	for flat := 0; flat < 3; {
		select {
		case <-p.ctx.Done():
			return
		case <-p.eofc:
			return
		case now := <-t.C:
			sent, netW, reader := p.sent.Load(), p.netWait.Load(), p.readerWait.Load()
			sample := growSample{rate: float64(sent-last) / now.Sub(lastAt).Seconds(),
				netWait: time.Duration(netW - lastNet), readerWait: time.Duration(reader - lastReader)}
			last, lastAt, lastNet, lastReader = sent, now, netW, reader
			grew, add := growDecision(best, sample)
			if grew {
				best = sample.rate
			}
			if !add {
				flat++
				continue
			}
			flat = 0
			p.lanesMu.Lock()
			n := len(p.lanes)
			p.lanesMu.Unlock()
			if n >= p.opts.MaxStreams {
				return
			}
			l, err := p.newLane(n)
			if err != nil {
				return // the receiver may have finished meanwhile; keep what we have
			}
			p.start(l)
		}
	}
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
		if werr := p.limiter.Wait(p.ctx, n); werr != nil {
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
		close(p.eofc)
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

// keepalive sends a keepalive frame on every lane that has been quiet for
// opts.Keepalive (while `zfs send` produces nothing), so the receiver's idle
// timeout measures a dead sender, not a slow source. It returns a stop func.
func (p *sendPipeline) keepalive() (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(p.opts.Keepalive / 2)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				p.lanesMu.Lock()
				lanes := append([]*lane(nil), p.lanes...)
				p.lanesMu.Unlock()
				for _, l := range lanes {
					l.keepalive(p.opts.Keepalive) // a broken connection is the ack reader's to mend
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

// lane is one stream index: a connection at a time, and the frames sent on
// it that the receiver has not acknowledged yet.
type lane struct {
	p     *sendPipeline
	index int
	cur   atomic.Pointer[laneConn]

	mu    sync.Mutex // serialises writes, keepalives and reconnection
	last  time.Time  // end of the last write
	ended bool       // END written: only the final ack may follow
	end   []byte     // the END frame, sent again after a reconnection
	kaSeq uint64     // keepalives sent (their sequence numbers)

	qmu     sync.Mutex // guards the fields below (the ack reader must never wait for a write)
	unacked []sentFrame
	// busy counts writes in progress that may read unacked buffers; an
	// acknowledged buffer goes back to the pool only when none is (the
	// receiver may acknowledge a frame before our write call has returned).
	busy     int
	deferred [][]byte

	final chan ackResult // from watch
}

type laneConn struct {
	conn net.Conn
}

type sentFrame struct {
	seq   uint64
	frame []byte
	buf   []byte // from the pool
}

type ackResult struct {
	mac    []byte
	frames uint64
}

// send queues frame as unacknowledged and writes it; both under mu, so a
// reconnection either sends it again or happens before it is written. A
// broken connection is re-established (and the frame sent again) before it
// returns.
func (l *lane) send(f sentFrame, end bool) error {
	l.mu.Lock()
	if end {
		l.ended, l.end = true, f.frame
	}
	l.qmu.Lock()
	if !end {
		l.unacked = append(l.unacked, f)
	}
	l.busy++
	l.qmu.Unlock()
	c := l.cur.Load()
	start := time.Now()
	_, err := c.conn.Write(f.frame)
	l.p.netWait.Add(int64(time.Since(start)))
	l.writeDone()
	l.last = time.Now()
	l.mu.Unlock()
	if err != nil {
		return l.recover(c, err)
	}
	return nil
}

// keepalive writes an empty authenticated frame if the lane has been quiet
// for every; one busy writing (or blocked by backpressure) is skipped.
func (l *lane) keepalive(every time.Duration) {
	if !l.mu.TryLock() {
		return
	}
	defer l.mu.Unlock()
	if l.ended || time.Since(l.last) < every {
		return
	}
	keys := l.p.keys
	buf := make([]byte, headerSize+keys.data.Overhead())
	frame := sealFrame(keys.data, buf, frameHeader{seq: l.kaSeq, typ: frameKeepalive, conn: uint16(l.index)}, 0)
	l.kaSeq++
	l.cur.Load().conn.Write(frame)
	l.last = time.Now()
}

// ackUpTo drops the frames before sequence next: the receiver holds them.
func (l *lane) ackUpTo(next uint64) {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	i := 0
	for ; i < len(l.unacked) && l.unacked[i].seq < next; i++ {
		if l.busy > 0 {
			l.deferred = append(l.deferred, l.unacked[i].buf)
		} else {
			l.p.pool.put(l.unacked[i].buf)
		}
	}
	l.unacked = append(l.unacked[:0], l.unacked[i:]...)
}

// writeDone ends a write counted in busy.
func (l *lane) writeDone() {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	l.busy--
	if l.busy == 0 {
		for _, b := range l.deferred {
			l.p.pool.put(b)
		}
		l.deferred = l.deferred[:0]
	}
}

// recover re-establishes the lane after connection c broke (cause): it
// re-dials with backoff, learns from the receiver's handshake which frames it
// holds, and sends the others (and the END frame, if it was written) again.
// It is a no-op if another goroutine already replaced c.
func (l *lane) recover(c *laneConn, cause error) error {
	p := l.p
	c.conn.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur.Load() != c {
		return nil
	}
	if p.ctx.Err() != nil {
		return context.Cause(p.ctx)
	}
	backoff := p.opts.ReconnectBackoff
	lastErr := cause
	for attempt := 0; attempt < p.opts.ReconnectAttempts; attempt++ {
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
			return context.Cause(p.ctx)
		}
		backoff = min(2*backoff, 5*time.Second)
		conn, resume, err := p.dial(p.ctx, l.index)
		if err != nil {
			lastErr = err
			continue
		}
		l.ackUpTo(resume)
		if err := l.resend(conn); err != nil {
			conn.Close()
			lastErr = err
			continue
		}
		nc := &laneConn{conn: conn}
		l.cur.Store(nc)
		p.reconnects.Add(1)
		go l.watch(nc)
		if p.ctx.Err() != nil { // closeAll may have missed the new connection
			conn.Close()
		}
		return nil
	}
	if p.opts.ReconnectAttempts <= 0 {
		return fmt.Errorf("%w (stream %d): the connection broke (%v) and reconnection is off", ErrConnLost, l.index, cause)
	}
	return fmt.Errorf("%w (stream %d): the connection broke (%v) and %d reconnection attempts failed; last: %v",
		ErrConnLost, l.index, cause, p.opts.ReconnectAttempts, lastErr)
}

func (l *lane) resend(conn net.Conn) error {
	l.qmu.Lock()
	frames := make([][]byte, 0, len(l.unacked)+1)
	for _, f := range l.unacked {
		frames = append(frames, f.frame)
	}
	l.busy++
	l.qmu.Unlock()
	defer l.writeDone()
	if l.ended {
		frames = append(frames, l.end)
	}
	for _, f := range frames {
		if _, err := conn.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// stream sends chunks on the lane until the input ends, then its END frame,
// then waits for the receiver's final ack.
func (l *lane) stream() error {
	p := l.p
	for {
		start := time.Now()
		buf, ok := p.pool.get(p.ctx) // waits for acks: the network too
		p.netWait.Add(int64(time.Since(start)))
		if !ok {
			return context.Cause(p.ctx)
		}
		start = time.Now()
		seq, n, ok := p.next(buf[headerSize : headerSize+p.opts.ChunkSize])
		p.readerWait.Add(int64(time.Since(start)))
		if !ok {
			if p.ctx.Err() == nil {
				p.pool.put(buf) // clean end: the reader is done with it
			}
			break // else buf may still be filled by an abandoned read: not reused
		}
		frame := sealFrame(p.keys.data, buf, frameHeader{seq: seq, typ: frameData}, n)
		if err := l.send(sentFrame{seq: seq, frame: frame, buf: buf}, false); err != nil {
			return err
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
	end = sealFrame(p.keys.data, end, frameHeader{seq: totalFrames, typ: frameEnd, conn: uint16(l.index)}, endPayload)
	if err := l.send(sentFrame{frame: end}, true); err != nil {
		return err
	}
	timeout := time.NewTimer(p.opts.AckTimeout)
	defer timeout.Stop()
	var ack ackResult
	select {
	case ack = <-l.final:
	case <-timeout.C:
		return fmt.Errorf("%w (stream %d): no answer in %v", ErrNotConfirmed, l.index, p.opts.AckTimeout)
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	if ack.frames != totalFrames || !hmac.Equal(ack.mac, ackMAC(p.keys, p.sess.id, totalBytes, totalFrames)) {
		return fmt.Errorf("%w (stream %d): bad ack", ErrNotConfirmed, l.index)
	}
	return nil
}

// watch reads what the receiver sends on connection c: acknowledgements of
// the frames it holds, then the final ack, or an abort. A connection that
// breaks is re-established (recover); an abort fails the transfer at once,
// even while `zfs send` is quiet.
func (l *lane) watch(c *laneConn) {
	p := l.p
	msg := make([]byte, reverseSize)
	for {
		if _, err := io.ReadFull(c.conn, msg); err != nil {
			if p.ctx.Err() != nil || l.cur.Load() != c {
				return
			}
			if err := l.recover(c, err); err != nil {
				p.fail(err)
			}
			return
		}
		typ, value := msg[0], beUint64(msg[8:16])
		if typ == revFinal {
			l.final <- ackResult{mac: append([]byte(nil), msg[16:]...), frames: value}
			return
		}
		if !hmac.Equal(msg[16:], reverseMAC(p.keys, p.sess.id, uint16(l.index), msg[:16])) {
			p.fail(fmt.Errorf("%w (stream %d): receiver message failed authentication", ErrProtocol, l.index))
			return
		}
		switch typ {
		case revReceived:
			l.ackUpTo(value)
		case revAbort:
			p.fail(fmt.Errorf("%w (stream %d): the receiver gave up", ErrConnLost, l.index))
			return
		default:
			p.fail(fmt.Errorf("%w (stream %d): unknown receiver message %d", ErrProtocol, l.index, typ))
			return
		}
	}
}

// framePool hands out frame buffers, at most size at a time: a sender never
// holds more than that many frames unacknowledged.
type framePool struct {
	tokens chan struct{}
	size   int
	stalls atomic.Int64

	mu   sync.Mutex
	free [][]byte
}

func newFramePool(n, size int) *framePool {
	return &framePool{tokens: make(chan struct{}, n), size: size}
}

func (fp *framePool) get(ctx context.Context) ([]byte, bool) {
	select {
	case fp.tokens <- struct{}{}:
	default:
		fp.stalls.Add(1)
		select {
		case fp.tokens <- struct{}{}:
		case <-ctx.Done():
			return nil, false
		}
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if n := len(fp.free); n > 0 {
		b := fp.free[n-1]
		fp.free = fp.free[:n-1]
		return b, true
	}
	return make([]byte, fp.size), true
}

func (fp *framePool) put(b []byte) {
	fp.mu.Lock()
	fp.free = append(fp.free, b[:cap(b)])
	fp.mu.Unlock()
	<-fp.tokens
}
