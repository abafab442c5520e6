package zfsexec

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
)

// pidMarker prefixes the first stderr line of every remote command: the
// remote shell's PID, which (sshd makes each session a process group
// leader, and the shell execs the command) is the command's PID and PGID.
const pidMarker = "zcloud-remote-pid:"

// remoteLine is the command line sent over SSH: report the PID, then exec
// the quoted argv so the PID stays the command's. POSIX sh and bash login
// shells understand it.
func remoteLine(argv []string) string {
	return "echo " + pidMarker + "$$ >&2; exec " + QuoteArgv(argv)
}

// pidCatcher strips the PID line from the front of stderr and passes the
// rest through unchanged.
type pidCatcher struct {
	w     io.Writer
	mu    sync.Mutex
	buf   []byte
	done  bool
	pid   int
	ready chan struct{}
}

func newPIDCatcher(w io.Writer) *pidCatcher { return &pidCatcher{w: w, ready: make(chan struct{})} }

func (p *pidCatcher) Write(b []byte) (int, error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return p.w.Write(b)
	}
	p.buf = append(p.buf, b...)
	i := bytes.IndexByte(p.buf, '\n')
	if i < 0 && len(p.buf) < 64 {
		p.mu.Unlock()
		return len(b), nil
	}
	rest := p.buf
	if i >= 0 && bytes.HasPrefix(p.buf, []byte(pidMarker)) {
		if n, err := strconv.Atoi(string(p.buf[len(pidMarker):i])); err == nil && n > 1 {
			p.pid = n
		}
		rest = p.buf[i+1:]
	}
	p.buf = nil
	p.done = true
	close(p.ready)
	p.mu.Unlock()
	if len(rest) > 0 {
		if _, err := p.w.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// flush passes on what is still buffered (stderr that never had the
// marker line and ended without a newline).
func (p *pidCatcher) flush() {
	p.mu.Lock()
	rest := p.buf
	p.buf = nil
	if !p.done {
		p.done = true
		close(p.ready)
	}
	p.mu.Unlock()
	if len(rest) > 0 {
		_, _ = p.w.Write(rest)
	}
}

// wait returns the remote PID, waiting up to d for it to arrive; 0 if unknown.
func (p *pidCatcher) wait(d time.Duration) int {
	select {
	case <-p.ready:
	case <-time.After(d):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// killRemote sends sig to the remote process group pid over a new session.
func (s *SSH) killRemote(client *ssh.Client, pid int, sig string) {
	if pid <= 1 {
		return
	}
	sess, err := client.NewSession()
	if err != nil {
		s.log.Warn("cannot open session to kill remote command", zap.Int("pid", pid), zap.Error(err))
		return
	}
	defer sess.Close()
	done := make(chan error, 1)
	go func() {
		done <- sess.Run(fmt.Sprintf("kill -%s -- -%d 2>/dev/null || kill -%s %d", sig, pid, sig, pid))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("kill of remote command timed out", zap.Int("pid", pid))
	}
}
