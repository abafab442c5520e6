package archive

import (
	"io"
	"sync"
)

// ringPipe is an in-memory pipe with a fixed buffer. Unlike io.Pipe, the
// writer runs ahead of the reader by up to the buffer's size, so the
// pipeline's stages (hash, encrypt, hash+split) run at the same time on
// different cores instead of taking turns; memory stays bounded.
type ringPipe struct {
	mu         sync.Mutex
	cond       *sync.Cond
	buf        []byte
	r, n       int
	werr, rerr error // set by the writer's / reader's close
}

func newRingPipe(size int) (*ringReader, *ringWriter) {
	p := &ringPipe{buf: make([]byte, size)}
	p.cond = sync.NewCond(&p.mu)
	return &ringReader{p}, &ringWriter{p}
}

type ringReader struct{ p *ringPipe }
type ringWriter struct{ p *ringPipe }

func (w *ringWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.n == len(p.buf) && p.rerr == nil {
			p.cond.Wait()
		}
		if p.rerr != nil {
			return written, p.rerr
		}
		end := (p.r + p.n) % len(p.buf)
		room := len(p.buf) - p.n
		if end+room > len(p.buf) {
			room = len(p.buf) - end // up to the wrap; the loop does the rest
		}
		k := copy(p.buf[end:end+room], b)
		p.n += k
		b = b[k:]
		written += k
		p.cond.Broadcast()
	}
	return written, nil
}

// CloseWithError ends the stream; the reader sees err (io.EOF if nil)
// once the buffer is drained.
func (w *ringWriter) CloseWithError(err error) {
	if err == nil {
		err = io.EOF
	}
	w.p.mu.Lock()
	if w.p.werr == nil {
		w.p.werr = err
	}
	w.p.cond.Broadcast()
	w.p.mu.Unlock()
}

func (w *ringWriter) Close() error { w.CloseWithError(nil); return nil }

func (r *ringReader) Read(b []byte) (int, error) {
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && p.werr == nil && p.rerr == nil {
		p.cond.Wait()
	}
	if p.rerr != nil {
		return 0, p.rerr
	}
	if p.n == 0 {
		return 0, p.werr
	}
	k := min(len(b), p.n, len(p.buf)-p.r)
	copy(b, p.buf[p.r:p.r+k])
	p.r = (p.r + k) % len(p.buf)
	p.n -= k
	p.cond.Broadcast()
	return k, nil
}

// CloseWithError stops the writer: its pending and later writes fail with err.
func (r *ringReader) CloseWithError(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	r.p.mu.Lock()
	if r.p.rerr == nil {
		r.p.rerr = err
	}
	r.p.cond.Broadcast()
	r.p.mu.Unlock()
}
