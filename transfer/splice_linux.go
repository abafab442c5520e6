//go:build linux

package transfer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxRetainedPipe bounds what a spliceWriter may keep pinned: a pipe larger
// than this (a consumer raised its size) is fed with plain writes instead.
const maxRetainedPipe = 16 << 20

// spliceWriter feeds the receive command's pipe with vmsplice(2): the pipe
// references our buffer pages instead of copying them into freshly allocated
// pipe pages. On the 2-core test machine that made the hop into the command
// about 4x cheaper (BENCHMARKS.md). The price: a buffer must not change until
// the command has read it. A pipe holds at most F_GETPIPE_SZ bytes (each slot
// at most one page), so once that many bytes were written after a buffer, the
// command has read it; until then the buffer is retained here. Buffers still
// retained when the stream ends stay referenced until the caller calls
// release, after the command has exited.
//
// This is only safe for a command that read(2)s its stdin (zfs receive, cat):
// one that splices or tees it onward would pass our pages on.
type spliceWriter struct {
	f        *os.File
	raw      syscall.RawConn
	written  int64 // bytes put into the pipe so far
	retained []retainedBuf
	copying  bool // vmsplice unusable: plain writes from now on
}

type retainedBuf struct {
	buf []byte
	end int64 // written when the last byte of buf entered the pipe
}

func newSpliceWriter(f *os.File) *spliceWriter {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	return &spliceWriter{f: f, raw: raw}
}

// Write copies b into the pipe (for callers that do not retain).
func (s *spliceWriter) Write(b []byte) (int, error) {
	n, err := s.f.Write(b)
	s.written += int64(n)
	return n, err
}

// writeRetained writes b to the pipe and returns the buffers (b or earlier
// ones) that the pipe can no longer reference, for reuse.
func (s *spliceWriter) writeRetained(b []byte) ([][]byte, error) {
	if len(b) == 0 {
		return [][]byte{b}, nil
	}
	if capacity := s.pipeSize(); s.copying || capacity <= 0 || capacity > maxRetainedPipe {
		if _, err := s.Write(b); err != nil {
			return nil, err
		}
		return s.releasable(b), nil
	}
	n, err := s.vmsplice(b)
	s.written += int64(n)
	if err != nil {
		if n > 0 || !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) {
			// Part of b may sit in the pipe: it must stay untouched.
			s.retained = append(s.retained, retainedBuf{b, s.written})
			return nil, err
		}
		s.copying = true // not a pipe after all, or no vmsplice: copy instead
		return s.writeRetained(b)
	}
	s.retained = append(s.retained, retainedBuf{b, s.written})
	return s.releasable(nil), nil
}

// releasable pops the retained buffers with at least a pipe's capacity of
// bytes written after them, plus extra (a buffer that was copied, not
// spliced). The capacity is read now, after the writes: the pipe may have
// grown while they blocked, and it never holds more than its capacity now,
// so anything older than the last capacity bytes has been read.
func (s *spliceWriter) releasable(extra []byte) [][]byte {
	var out [][]byte
	if extra != nil {
		out = append(out, extra)
	}
	capacity := s.pipeSize()
	if capacity <= 0 {
		return out // unknown size: keep everything until release
	}
	i := 0
	for ; i < len(s.retained) && s.written-s.retained[i].end >= int64(capacity); i++ {
		out = append(out, s.retained[i].buf)
	}
	s.retained = append(s.retained[:0], s.retained[i:]...)
	return out
}

func (s *spliceWriter) pipeSize() int {
	size := -1
	s.raw.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil {
			size = n
		}
	})
	return size
}

// vmsplice puts all of b into the pipe, waiting (through the runtime poller)
// while the pipe is full.
func (s *spliceWriter) vmsplice(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		var n int
		var errno syscall.Errno
		err := s.raw.Write(func(fd uintptr) bool {
			iov := syscall.Iovec{Base: &b[done]}
			iov.SetLen(len(b) - done)
			r, _, e := syscall.Syscall6(unix.SYS_VMSPLICE, fd, uintptr(unsafe.Pointer(&iov)), 1, unix.SPLICE_F_NONBLOCK, 0, 0)
			if e == syscall.EAGAIN {
				return false // full: wait until writable
			}
			n, errno = int(r), e
			return true
		})
		if err != nil {
			return done, err
		}
		if errno != 0 {
			return done, fmt.Errorf("vmsplice: %w", errno)
		}
		done += n
	}
	return done, nil
}

// release drops the buffers the pipe may still reference; call it once the
// command reading the pipe has exited.
func (s *spliceWriter) release() { s.retained = nil }
