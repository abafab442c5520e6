package main

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// runFloor measures, one at a time, the steps no encrypting transfer from a
// `zfs send` pipe to a `zfs receive` pipe can skip, and adds them up: the
// CPU-seconds per GiB below which zcloud cannot go on this machine, and the
// throughput that leaves on its cores. Each step moves the same 1 MiB blocks
// the transfer uses.
func runFloor(cfg config) error {
	size := cfg.size
	gib := float64(size) / (1 << 30)
	fmt.Printf("cost floor of an encrypted pipe-to-pipe transfer, %s per step, %d CPUs, %s\n\n", humanSize(size), runtime.NumCPU(), cpuModel())

	seal, open, err := gcmCost(size)
	if err != nil {
		return err
	}
	pipeWrite, pipeRead, err := hopCost(size, "pipe")
	if err != nil {
		return err
	}
	tcpSend, tcpRecv, err := hopCost(size, "tcp")
	if err != nil {
		return err
	}
	_, catRead, err := hopCost(size, "cat")
	if err != nil {
		return err
	}
	steps := []struct {
		name string
		cpu  time.Duration
	}{
		{"feeder writes the input pipe (zfs send's side)", pipeWrite},
		{"sender reads the input pipe (1 MiB reads)", pipeRead},
		{"AES-256-GCM seal", seal},
		{"loopback TCP, sender side", tcpSend},
		{"loopback TCP, receiver side", tcpRecv},
		{"AES-256-GCM open", open},
		{"consumer reads the output pipe (cat)", catRead},
	}
	var total float64
	for _, s := range steps {
		perGiB := s.cpu.Seconds() / gib
		total += perGiB
		fmt.Printf("  %-48s %6.2f CPU s/GiB\n", s.name, perGiB)
	}
	ceiling := float64(runtime.NumCPU()) / total * (1 << 30) / 1e6
	fmt.Printf("  %-48s %6.2f CPU s/GiB\n", "total (every step once, nothing else)", total)
	fmt.Printf("\nceiling with all %d CPUs busy and zero overhead: %.0f MB/s\n", runtime.NumCPU(), ceiling)
	return nil
}

// gcmCost times AES-256-GCM Seal and Open of size bytes in 1 MiB frames on
// one goroutine (wall time of a busy loop = its CPU time).
func gcmCost(size int64) (seal, open time.Duration, err error) {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return 0, 0, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return 0, 0, err
	}
	frame := make([]byte, 1<<20, 1<<20+aead.Overhead())
	rand.Read(frame)
	nonce := make([]byte, aead.NonceSize())
	sealed := aead.Seal(nil, nonce, frame, nil)
	buf := make([]byte, len(sealed))
	n := size >> 20
	start := time.Now()
	for range n {
		aead.Seal(frame[:0], nonce, frame, nil)
	}
	seal = time.Since(start)
	start = time.Now()
	for range n {
		copy(buf, sealed)
		if _, err := aead.Open(buf[:0], nonce, buf, nil); err != nil {
			return 0, 0, err
		}
	}
	return seal, time.Since(start), nil
}

// hopCost moves size bytes from this process into a child (the bench
// re-executed with -role sink) and returns the CPU time of each end: through
// a 1 MiB pipe ("pipe"), a loopback TCP connection ("tcp"), or a pipe into
// `cat >/dev/null` ("cat", only the reader's side counts there).
func hopCost(size int64, kind string) (writer, reader time.Duration, err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	var child *exec.Cmd
	var out io.WriteCloser
	switch kind {
	case "pipe", "cat":
		r, w, err := dataPipe()
		if err != nil {
			return 0, 0, err
		}
		child = exec.Command(self, "-role", "sink")
		if kind == "cat" {
			child = exec.Command("sh", "-c", "exec cat >/dev/null")
		}
		child.Stdin = r
		if err := child.Start(); err != nil {
			return 0, 0, err
		}
		r.Close()
		out = w
	case "tcp":
		child = exec.Command(self, "-role", "sink", "-port", "-1")
		stdout, err := child.StdoutPipe()
		if err != nil {
			return 0, 0, err
		}
		if err := child.Start(); err != nil {
			return 0, 0, err
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			return 0, 0, fmt.Errorf("tcp sink: %w", err)
		}
		conn, err := net.Dial("tcp", strings.TrimSpace(line))
		if err != nil {
			return 0, 0, err
		}
		out = conn
	}
	block := make([]byte, 1<<20)
	rand.Read(block)
	before := selfCPU()
	for left := size; left > 0; left -= int64(len(block)) {
		if _, err := out.Write(block); err != nil {
			return 0, 0, err
		}
	}
	writer = selfCPU() - before
	out.Close()
	if err := child.Wait(); err != nil {
		return 0, 0, fmt.Errorf("%s sink: %w", kind, err)
	}
	ru := child.ProcessState.SysUsage().(*syscall.Rusage)
	return writer, time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runSink is the reading end of hopCost: stdin, or with port -1 one TCP
// connection on a fresh loopback port (printed first), read to EOF in 1 MiB
// reads and discarded.
func runSink(port int) error {
	var in io.Reader = os.Stdin
	if port == -1 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Println(ln.Addr().String())
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		in = conn
	}
	buf := make([]byte, 1<<20)
	for {
		_, err := in.Read(buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
