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

func printTable(results []result, runs int) {
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
	fmt.Printf("\n| %-44s | %-26s | %6s | %10s | %21s | %12s | %12s |\n", "transport", spread, "vs ssh", "vs mbuffer", "CPU s/GiB (send+recv)", "send RSS MiB", "recv RSS MiB")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|%s|\n", dashes(46), dashes(28), dashes(8), dashes(12), dashes(23), dashes(14), dashes(14))
	for _, r := range results {
		gib := float64(r.bytes) / (1 << 30)
		cpu := fmt.Sprintf("%.2f (%.2f+%.2f)", r.cpuPerGiB(), r.send.cpu.Seconds()/gib, r.recv.cpu.Seconds()/gib)
		rate := fmt.Sprintf("%.0f", r.mbps())
		if runs > 1 {
			rate = fmt.Sprintf("%.0f (%.0f-%.0f)", r.mbps(), r.minMBps, r.maxMBps)
		}
		fmt.Printf("| %-44s | %-26s | %6s | %10s | %21s | %12.1f | %12.1f |\n",
			r.name, rate, ratio(r.mbps(), sshRate), ratio(r.mbps(), mbufRate), cpu, r.send.rssMiB(), r.recv.rssMiB())
	}
}

func dashes(n int) string { return strings.Repeat("-", n) }

// feed writes size bytes of incompressible data (a random 8 MiB block,
// repeated) into w, the same stream for every transport.
func feed(w *os.File, size int64) error {
	defer w.Close()
	block := make([]byte, 8<<20)
	rand.Read(block)
	for size > 0 {
		n := int64(len(block))
		if n > size {
			n = size
		}
		if _, err := w.Write(block[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
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

// waitListening polls /proc/net/tcp until something listens on port, without
// connecting (a probe would use up a one-shot listener such as mbuffer -I).
func waitListening(port int, limit time.Duration) error {
	want := fmt.Sprintf(":%04X ", port)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
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
