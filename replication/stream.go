package replication

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"zcloud/transfer"
)

// Pipe runs send and receive concurrently, joined by an OS pipe: `zfs send`
// writes into it directly and the receive side reads 1 MiB at a time (an
// io.Pipe would add a copying goroutine and 32 KiB handoffs). wrap, if not
// nil, wraps what the receive side reads (the activity's byte meter). The
// first side to fail is the cause: the other is cancelled (so no half-dead
// process stays behind) and its consequent error is not reported. The
// reader sees EOF only once the send has exited cleanly, so a failed send
// can never look like a complete stream.
func Pipe(ctx context.Context, wrap func(io.Reader) io.Reader, send func(context.Context, io.Writer) error, recv func(context.Context, io.Reader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var once sync.Once
	var first error
	fail := func(side string, err error) {
		once.Do(func() { first = fmt.Errorf("%s: %w", side, err) })
		cancel()
	}
	pr, pw, err := blockingPipe()
	if err != nil {
		return fmt.Errorf("send: pipe: %w", err)
	}
	transfer.GrowPipe(pw)
	in := &sentStream{r: pr, done: make(chan struct{})}
	go func() {
		err := send(ctx, pw)
		if err != nil {
			fail("send", err)
		}
		in.err = err
		close(in.done)
		pw.Close() // only now can the reader see EOF
	}()
	var rd io.Reader = in
	if wrap != nil {
		rd = wrap(in)
	}
	if err := recv(ctx, rd); err != nil {
		fail("receive", err)
	}
	pr.Close() // a send still writing gets EPIPE and exits
	<-in.done
	return first
}

// blockingPipe is os.Pipe without the runtime poller. Through epoll a reader
// faster than `zfs send` is woken, parked and woken again for small reads; a
// blocking read sleeps in the kernel and takes all that is there when it
// wakes (on the test machine 0.39 against 0.55-0.72 CPU s/GiB, 1 MiB pipe).
// A read blocked in it ends when the send exits and the write end closes.
func blockingPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// sentStream is the read end of the send pipe. EOF is passed on only when
// the send succeeded; otherwise the reader gets the send's error.
type sentStream struct {
	r    *os.File
	done chan struct{} // closed once err is set
	err  error
}

func (s *sentStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		<-s.done // the writer end closes only after done
		if s.err != nil {
			return n, fmt.Errorf("the send failed: %w", s.err)
		}
	}
	return n, err
}
