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
		growPipe(f) // fewer wakeups reading `zfs send` through a pipe
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

// sendPipeline: one reader cuts r into chunks, Workers seal them in parallel,
// and one writer per connection takes sealed frames in sequence order from a
// shared queue (so each connection carries increasing sequence numbers and a
// slow connection simply takes fewer frames). A fixed pool of buffers bounds
// memory and provides backpressure from the network back to r.
type sendPipeline struct {
	opts   SendOptions
	keys   sessionKeys
	sess   Session
	ctx    context.Context
	cancel context.CancelCauseFunc

	sent        atomic.Int64 // payload bytes written to connections
	totalBytes  uint64       // set by the reader before it closes ordered
	totalFrames uint64

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

type sealJob struct {
	seq    uint64
	buf    []byte
	n      int
	frame  []byte
	sealed chan struct{}
}

func (p *sendPipeline) run(r io.Reader, conns []net.Conn) (Stats, error) {
	nbuf := 2*p.opts.Workers + 2*len(conns)
	free := make(chan []byte, nbuf)
	for range nbuf {
		free <- make([]byte, headerSize+p.opts.ChunkSize+p.keys.data.Overhead())
	}
	work := make(chan *sealJob, nbuf)
	ordered := make(chan *sealJob, nbuf)

	progress := startProgress(p.opts.Progress, p.opts.ProgressInterval, &p.sent)
	defer progress.stop()

	go p.read(r, free, work, ordered)
	var workers sync.WaitGroup
	for range p.opts.Workers {
		workers.Add(1)
		go func() { defer workers.Done(); p.seal(work) }()
	}
	var writers sync.WaitGroup
	for i, c := range conns {
		writers.Add(1)
		go func() {
			defer writers.Done()
			if err := p.write(c, i, ordered, free); err != nil {
				p.fail(err)
			}
		}()
	}
	writers.Wait()
	p.cancel(nil) // stops the workers and, if it waits for a buffer, the reader
	workers.Wait()
	progress.stop()

	stats := Stats{Bytes: p.sent.Load()}
	if p.err != nil {
		return stats, fmt.Errorf("transfer: send failed after %d bytes: %w", stats.Bytes, p.err)
	}
	stats.Frames = p.totalFrames // written before ordered was closed
	return stats, nil
}

// read cuts r into full chunks. It closes work and ordered only on a clean
// EOF: on error it cancels instead, so no END frame can claim a partial stream.
func (p *sendPipeline) read(r io.Reader, free chan []byte, work, ordered chan *sealJob) {
	limiter := newTokenBucket(p.opts.BandwidthLimit, p.opts.ChunkSize)
	var seq, total uint64
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-p.ctx.Done():
			return
		}
		n, err := io.ReadFull(r, buf[headerSize:headerSize+p.opts.ChunkSize])
		if n > 0 {
			if werr := limiter.wait(p.ctx, n); werr != nil {
				return
			}
			job := &sealJob{seq: seq, buf: buf, n: n, sealed: make(chan struct{})}
			seq++
			total += uint64(n)
			work <- job // both channels hold every buffer, so these never block
			ordered <- job
		} else {
			free <- buf
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			p.totalBytes, p.totalFrames = total, seq
			close(work)
			close(ordered)
			return
		}
		if err != nil {
			p.fail(fmt.Errorf("reading the input stream: %w", err))
			return
		}
	}
}

func (p *sendPipeline) seal(work <-chan *sealJob) {
	for {
		select {
		case job, ok := <-work:
			if !ok {
				return
			}
			job.frame = sealFrame(p.keys.data, job.buf, frameHeader{seq: job.seq, typ: frameData}, job.n)
			close(job.sealed)
		case <-p.ctx.Done():
			return
		}
	}
}

// write sends frames in queue order on one connection, then its END frame,
// then waits for the receiver's ack.
func (p *sendPipeline) write(conn net.Conn, index int, ordered <-chan *sealJob, free chan<- []byte) error {
	for {
		var job *sealJob
		var ok bool
		select {
		case job, ok = <-ordered:
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		}
		if !ok {
			break
		}
		select {
		case <-job.sealed:
		case <-p.ctx.Done():
			return context.Cause(p.ctx)
		}
		if _, err := conn.Write(job.frame); err != nil {
			return p.connErr(index, err)
		}
		p.sent.Add(int64(job.n))
		free <- job.buf
	}
	overhead := p.keys.data.Overhead()
	buf := make([]byte, headerSize+endPayload+overhead)
	copy(buf[headerSize:], endMarker(p.totalBytes, p.totalFrames))
	end := sealFrame(p.keys.data, buf, frameHeader{seq: p.totalFrames, typ: frameEnd, conn: uint16(index)}, endPayload)
	if _, err := conn.Write(end); err != nil {
		return p.connErr(index, err)
	}
	conn.SetReadDeadline(time.Now().Add(p.opts.AckTimeout))
	ack := make([]byte, proofSize)
	if _, err := io.ReadFull(conn, ack); err != nil {
		if p.ctx.Err() != nil {
			return context.Cause(p.ctx)
		}
		return fmt.Errorf("%w (stream %d): %v", ErrNotConfirmed, index, err)
	}
	if !hmac.Equal(ack, ackMAC(p.keys, p.sess.id, p.totalBytes, p.totalFrames)) {
		return fmt.Errorf("%w (stream %d): bad ack", ErrNotConfirmed, index)
	}
	return nil
}

func (p *sendPipeline) connErr(index int, err error) error {
	if p.ctx.Err() != nil {
		return context.Cause(p.ctx)
	}
	return fmt.Errorf("%w (stream %d): %v", ErrConnLost, index, err)
}
