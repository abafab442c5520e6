//go:build linux

package transfer

import (
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// bestCongestionControl is BBR when the kernel offers it: on a long or lossy
// path it keeps a connection near the bottleneck rate where CUBIC backs off
// at every loss. "" leaves the system default.
var bestCongestionControl = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err == nil && strings.Contains(" "+strings.TrimSpace(string(b))+" ", " bbr ") {
		return "bbr"
	}
	return ""
})

// tuneSocket is the sender's dial hook: BBR where offered (an unprivileged
// process may be refused one not in tcp_allowed_congestion_control; then the
// default stays). Socket buffers are left to the kernel's autotuning, which
// grows each one up to net.ipv4.tcp_wmem/tcp_rmem's maximum for the path's
// bandwidth-delay product; setting SO_SNDBUF/SO_RCVBUF would switch that off
// and cap them at net.core.wmem_max/rmem_max instead.
//
// TCP_NOTSENT_LOWAT keeps at most notSent bytes queued unsent in each
// socket: a lane takes its next chunk only when its connection is actually
// moving data, so a connection slowed by loss does not sit on megabytes of
// frames the others would have carried (which the receiver would then wait
// for, holding its reorder window).
func tuneSocket(notSent int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		c.Control(func(fd uintptr) {
			if cc := bestCongestionControl(); cc != "" {
				unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
			}
			if notSent > 0 {
				unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSent)
			}
		})
		return nil
	}
}
