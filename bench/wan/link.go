package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The emulated link: two network namespaces, each with one TUN device, and
// this process forwarding IP packets between the two TUN file descriptors,
// applying per direction a one-way delay, a rate limit behind a bounded
// FIFO (tail drop) and random loss. Only 198.18.0.0/15 (RFC 2544's benchmark
// range) is used, only inside the namespaces created here: the forwarder
// drops anything else, so nothing can leave the machine.
const (
	nsSend   = "zcwan-send"
	nsRecv   = "zcwan-recv"
	tunSend  = "zcwan0"
	tunRecv  = "zcwan1"
	addrSend = "198.18.0.1"
	addrRecv = "198.18.0.2"
	mtu      = 1500
)

// profile is one emulated path, the same in both directions.
type profile struct {
	name     string
	rateMbit float64       // bottleneck rate, Mbit/s
	rtt      time.Duration // round trip: each direction delays rtt/2
	loss     float64       // probability a packet is dropped, per direction
	queue    int           // bottleneck queue, bytes (0: one bandwidth-delay product)
}

func (p profile) String() string {
	return fmt.Sprintf("(%s) %g Mbit/s, %v RTT, %g %% loss", p.name, p.rateMbit, p.rtt, p.loss*100)
}

func (p profile) queueBytes() int {
	if p.queue > 0 {
		return p.queue
	}
	return max(int(p.rateMbit*1e6/8*p.rtt.Seconds()), 64<<10)
}

var profiles = map[string]profile{
	"a": {name: "a", rateMbit: 1000, rtt: 80 * time.Millisecond, loss: 0.0001},
	"b": {name: "b", rateMbit: 200, rtt: 150 * time.Millisecond, loss: 0.001},
	"c": {name: "c", rateMbit: 100, rtt: 20 * time.Millisecond, loss: 0.01},
}

// link is a running emulated link.
type link struct {
	prof    profile
	fds     [2]int
	dirs    [2]*direction
	stopped atomic.Bool
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeNamespaces deletes the namespaces this tool creates (their TUN
// devices go with them and with our file descriptors). Safe to call twice.
func removeNamespaces() {
	for _, ns := range []string{nsSend, nsRecv} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}
}

// openTUN creates a TUN device (no packet info header) in this process's
// namespace and returns its descriptor.
func openTUN(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var ifr [unix.IFNAMSIZ + 64]byte
	copy(ifr[:], name)
	binary.NativeEndian.PutUint16(ifr[unix.IFNAMSIZ:], unix.IFF_TUN|unix.IFF_NO_PI)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr[0]))); errno != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %v", name, errno)
	}
	return fd, nil
}

// setupLink creates both namespaces and TUN devices, moves each device into
// its namespace (the descriptor keeps working across the move), addresses
// them point to point, and starts forwarding.
func setupLink(p profile) (*link, error) {
	removeNamespaces()
	l := &link{prof: p}
	ok := false
	defer func() {
		if !ok {
			l.close()
		}
	}()
	for i, spec := range []struct{ ns, dev, local, peer string }{
		{nsSend, tunSend, addrSend, addrRecv},
		{nsRecv, tunRecv, addrRecv, addrSend},
	} {
		if err := run("ip", "netns", "add", spec.ns); err != nil {
			return nil, err
		}
		fd, err := openTUN(spec.dev)
		if err != nil {
			return nil, err
		}
		l.fds[i] = fd
		for _, args := range [][]string{
			{"link", "set", spec.dev, "netns", spec.ns},
			{"-n", spec.ns, "link", "set", "lo", "up"},
			{"-n", spec.ns, "link", "set", spec.dev, "mtu", fmt.Sprint(mtu), "up"},
			{"-n", spec.ns, "addr", "add", spec.local, "peer", spec.peer + "/32", "dev", spec.dev},
		} {
			if err := run("ip", args...); err != nil {
				return nil, err
			}
		}
		// No IPv6 chatter on the link (router solicitations and the like).
		run("ip", "netns", "exec", spec.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
	}
	rate := p.rateMbit * 1e6 / 8
	for i := range 2 {
		d := &direction{in: l.fds[i], out: l.fds[1-i], rate: rate, delay: p.rtt / 2, loss: p.loss, queue: p.queueBytes(), stopped: &l.stopped}
		l.dirs[i] = d
		go d.forward()
	}
	ok = true
	return l, nil
}

func (l *link) close() {
	l.stopped.Store(true)
	removeNamespaces()
	for _, fd := range l.fds {
		if fd > 0 {
			unix.Close(fd)
		}
	}
}

// stats: packets forwarded and dropped (loss, queue) per direction.
func (l *link) stats() string {
	var b strings.Builder
	for i, d := range l.dirs {
		if d == nil {
			continue
		}
		dir := "send->recv"
		if i == 1 {
			dir = "recv->send"
		}
		fmt.Fprintf(&b, "  %s: %d packets forwarded, %d lost at random, %d dropped at the full queue, %d foreign dropped\n",
			dir, d.forwarded.Load(), d.lost.Load(), d.tailDropped.Load(), d.foreign.Load())
	}
	return b.String()
}

// direction forwards packets read from in to out.
type direction struct {
	in, out int
	rate    float64 // bytes/s
	delay   time.Duration
	loss    float64
	queue   int // bytes the bottleneck queue holds
	stopped *atomic.Bool

	forwarded, lost, tailDropped, foreign atomic.Int64
}

type packet struct {
	buf []byte
	at  time.Time // when it leaves the far end of the link
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// forward models the bottleneck as a serialiser: a packet starts
// transmitting when the one before it has finished (busyUntil), takes
// len/rate, and is dropped if the queue ahead of it already holds queue
// bytes; it arrives delay after it finished transmitting. A separate
// goroutine writes each packet out at its arrival time (in order: arrival
// times never decrease).
func (d *direction) forward() {
	out := make(chan packet, 1<<17)
	go d.deliver(out)
	var busyUntil time.Time
	for !d.stopped.Load() {
		bp := bufPool.Get().(*[]byte)
		n, err := unix.Read(d.in, *bp)
		if err != nil || n <= 0 {
			bufPool.Put(bp)
			if d.stopped.Load() || err == unix.EBADF {
				close(out)
				return
			}
			continue
		}
		pkt := (*bp)[:n]
		if !benchmarkIPv4(pkt) {
			d.foreign.Add(1)
			bufPool.Put(bp)
			continue
		}
		if d.loss > 0 && rand.Float64() < d.loss {
			d.lost.Add(1)
			bufPool.Put(bp)
			continue
		}
		now := time.Now()
		start := busyUntil
		if start.Before(now) {
			start = now
		}
		if backlog := start.Sub(now).Seconds() * d.rate; int(backlog)+n > d.queue {
			d.tailDropped.Add(1)
			bufPool.Put(bp)
			continue
		}
		busyUntil = start.Add(time.Duration(float64(n) / d.rate * float64(time.Second)))
		out <- packet{buf: pkt, at: busyUntil.Add(d.delay)}
	}
	close(out)
}

func (d *direction) deliver(in <-chan packet) {
	for p := range in {
		if wait := time.Until(p.at); wait > 0 {
			time.Sleep(wait)
		}
		if !d.stopped.Load() {
			unix.Write(d.out, p.buf)
			d.forwarded.Add(1)
		}
		b := p.buf[:cap(p.buf)]
		bufPool.Put(&b)
	}
}

// benchmarkIPv4 reports whether pkt is IPv4 between two addresses of
// 198.18.0.0/15: the only traffic this forwarder ever passes.
func benchmarkIPv4(pkt []byte) bool {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return false
	}
	in15 := func(a []byte) bool { return a[0] == 198 && a[1]&0xfe == 18 }
	return in15(pkt[12:16]) && in15(pkt[16:20])
}
