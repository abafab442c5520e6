package transfer

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// corruptingProxy is a loopback TCP proxy that damages the sender->receiver
// direction of the first connection it accepts. It is a fake on purpose: a
// real network cannot be made to flip a chosen bit or cut a connection at a
// chosen byte. flipAt >= 0 flips the low bit of that byte (counted from the
// start of the connection, handshake included); cutAt >= 0 closes both sides
// once that many bytes have been forwarded.
type corruptingProxy struct {
	ln     net.Listener
	target string
	flipAt int64
	cutAt  int64

	mu       sync.Mutex
	accepted int
	captured []byte // first bytes the first connection sent (for replay tests)
}

func newCorruptingProxy(t *testing.T, targetPort int, flipAt, cutAt int64) *corruptingProxy {
	t.Helper()
	ln, _ := listenLoopback(t)
	p := &corruptingProxy{ln: ln, target: net.JoinHostPort("127.0.0.1", itoa(targetPort)), flipAt: flipAt, cutAt: cutAt}
	go p.serve()
	return p
}

func (p *corruptingProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *corruptingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		first := p.accepted == 0
		p.accepted++
		p.mu.Unlock()
		go p.pipe(c, first)
	}
}

func (p *corruptingProxy) pipe(client net.Conn, damage bool) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	closeBoth := func() { client.Close(); server.Close() }
	go func() { io.Copy(client, server); closeBoth() }()
	defer closeBoth()
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if damage {
				p.capture(chunk)
				if p.flipAt >= off && p.flipAt < off+int64(n) {
					chunk[p.flipAt-off] ^= 1
				}
				if p.cutAt >= 0 && off+int64(n) >= p.cutAt {
					server.Write(chunk[:p.cutAt-off])
					return
				}
			}
			if _, werr := server.Write(chunk); werr != nil {
				return
			}
			off += int64(n)
		}
		if err != nil {
			return
		}
	}
}

func (p *corruptingProxy) capture(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if room := 4096 - len(p.captured); room > 0 {
		p.captured = append(p.captured, b[:min(room, len(b))]...)
	}
}

func (p *corruptingProxy) capturedBytes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.captured...)
}

func itoa(i int) string {
	return strconv.Itoa(i)
}
