package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is one side's resource use: CPU from wait4's rusage (which includes
// the descendants it reaped, e.g. sshd's session and its cat), peak RSS from
// an rssWatcher.
type usage struct {
	cpu    time.Duration // user + system
	maxRSS int64         // KiB
}

func usageOf(cmd *exec.Cmd, rss *rssWatcher) usage {
	u := usage{maxRSS: rss.stop()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return u
}

func (u usage) rssMiB() float64 { return float64(u.maxRSS) / 1024 }

type result struct {
	name       string
	bytes      int64
	elapsed    time.Duration
	send, recv usage

	minMBps, maxMBps float64 // over the runs, when this is their median
}

func (r result) mbps() float64 { return float64(r.bytes) / r.elapsed.Seconds() / 1e6 }

func (r result) cpuPerGiB() float64 {
	return (r.send.cpu + r.recv.cpu).Seconds() / (float64(r.bytes) / (1 << 30))
}

func printTable(results []result, runs int, linkMbit float64) {
	var sshRate, mbufRate float64
	for _, r := range results {
		switch {
		case strings.HasPrefix(r.name, "ssh"):
			sshRate = r.mbps()
		case strings.HasPrefix(r.name, "mbuffer") && mbufRate == 0:
			mbufRate = r.mbps() // the first mbuffer row (-o /dev/null) is the reference
		}
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", a/b)
	}
	spread := "MB/s"
	if runs > 1 {
		spread = fmt.Sprintf("median MB/s of %d (min-max)", runs)
	}
	fmt.Printf("\n| %-48s | %-26s | %9s | %6s | %10s | %21s | %12s | %12s |\n", "transport", spread, "% of link", "vs ssh", "vs mbuffer", "CPU s/GiB (send+recv)", "send RSS MiB", "recv RSS MiB")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", dashes(50), dashes(28), dashes(11), dashes(8), dashes(12), dashes(23), dashes(14), dashes(14))
	for _, r := range results {
		gib := float64(r.bytes) / (1 << 30)
		cpu := fmt.Sprintf("%.2f (%.2f+%.2f)", r.cpuPerGiB(), r.send.cpu.Seconds()/gib, r.recv.cpu.Seconds()/gib)
		rate := mbps(r.mbps())
		if runs > 1 {
			rate = fmt.Sprintf("%s (%s-%s)", mbps(r.mbps()), mbps(r.minMBps), mbps(r.maxMBps))
		}
		ofLink := "-"
		if linkMbit > 0 {
			ofLink = fmt.Sprintf("%.1f %%", r.mbps()*8/linkMbit*100)
		}
		fmt.Printf("| %-48s | %-26s | %9s | %6s | %10s | %21s | %12.1f | %12.1f |\n",
			r.name, rate, ofLink, ratio(r.mbps(), sshRate), ratio(r.mbps(), mbufRate), cpu, r.send.rssMiB(), r.recv.rssMiB())
	}
}

// mbps prints a rate with the digits that matter (a WAN run can be 1 MB/s).
func mbps(v float64) string {
	if v < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func dashes(n int) string { return strings.Repeat("-", n) }

// feed writes size bytes of incompressible data (a random 8 MiB block,
// repeated) into w, the same stream for every transport; with seconds > 0 it
// writes until then instead. It returns the bytes written.
func feed(w *os.File, size int64, seconds float64) (int64, error) {
	defer w.Close()
	block := make([]byte, 1<<20)
	rand.Read(block)
	var written int64
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	for seconds > 0 || written < size {
		if seconds > 0 && !time.Now().Before(deadline) {
			break
		}
		n := int64(len(block))
		if seconds <= 0 && n > size-written {
			n = size - written
		}
		m, err := w.Write(block[:n])
		written += int64(m)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// command runs name in network namespace ns ("" = this one); `ip netns exec`
// execs it in place, so its pid, rusage and RSS are the command's own.
func command(ns, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

type fedResult struct {
	n   int64
	err error
}

func startFeed(w *os.File, cfg config, size int64) <-chan fedResult {
	ch := make(chan fedResult, 1)
	go func() {
		n, err := feed(w, size, cfg.seconds)
		ch <- fedResult{n, err}
	}()
	return ch
}

// dataPipe returns a pipe whose read end becomes a child's stdin; the
// pipe is enlarged like the one `zfs send` would write into.
func dataPipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err == nil {
		growPipe(w)
	}
	return r, w, err
}

func growPipe(f *os.File) {
	const fSetPipeSz = 1031
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, 1<<20) })
}

func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("size %q: %w", s, err)
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}

// waitListening polls the TCP table of pid's network namespace until something
// listens on port, without connecting (a probe would use up a one-shot
// listener such as mbuffer -I).
func waitListening(pid, port int, limit time.Duration) error {
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(limit)
	dir := fmt.Sprintf("/proc/%d/net/", pid)
	for time.Now().Before(deadline) {
		for _, f := range []string{dir + "tcp", dir + "tcp6"} {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) > 3 && strings.HasSuffix(fields[1]+" ", want) && fields[3] == "0A" {
					return nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on port %d after %v", port, limit)
}
