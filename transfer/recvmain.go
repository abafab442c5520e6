package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RecvOptions configure RecvMain, the target side of a transfer
// (`zcloud transfer recv`).
type RecvOptions struct {
	ListenAddr string      // address to listen on; "" means all interfaces
	PortMin    int         // first port to try; 0 means any free port
	PortMax    int         // last port to try (a range for firewalls); <= PortMin means PortMin only
	Command    []string    // receive command argv (e.g. zfs receive ...), run without a shell
	Stderr     io.Writer   // the command's stderr; nil means os.Stderr
	Splice     string      // SpliceAuto (""), SpliceAlways or SpliceNever: see spliceWanted
	Report     func(Stats) // if set, called with the receive's statistics (also on failure)
	ReceiveOptions
}

// Splice settings: whether the stream is handed to the command's pipe with
// vmsplice(2) (no copy) or write(2).
const (
	SpliceAuto   = "auto"   // when the command is known to read(2) its stdin: zfs receive, cat
	SpliceAlways = "always" // the caller vouches that the command reads its stdin
	SpliceNever  = "never"
)

// spliceWanted: vmsplice leaves our pages in the pipe, which is only safe when
// the command copies them out with read(2); a command that spliced them on
// (pv, tee-like tools) would see later data. So auto trusts only commands
// known to read: zfs receive (also behind sudo/doas) and cat.
func spliceWanted(mode string, argv []string) (bool, error) {
	switch mode {
	case SpliceNever:
		return false, nil
	case SpliceAlways:
		return true, nil
	case "", SpliceAuto:
	default:
		return false, fmt.Errorf("splice %q: want %s, %s or %s", mode, SpliceAuto, SpliceAlways, SpliceNever)
	}
	for len(argv) > 0 && (filepath.Base(argv[0]) == "sudo" || filepath.Base(argv[0]) == "doas") {
		argv = argv[1:]
		for len(argv) > 0 && strings.HasPrefix(argv[0], "-") { // sudo -n
			argv = argv[1:]
		}
	}
	if len(argv) == 0 {
		return false, nil
	}
	switch filepath.Base(argv[0]) {
	case "cat":
		return true, nil
	case "zfs":
		return len(argv) > 1 && (argv[1] == "receive" || argv[1] == "recv"), nil
	}
	return false, nil
}

// ListeningPrefix starts the one line RecvMain prints on stdout once it listens.
const ListeningPrefix = "LISTENING "

// RecvMain reads the session line (WriteSession) from stdin, listens, prints
// exactly one line "LISTENING <port>\n" on stdout, starts opts.Command with
// the reassembled stream on its stdin (the command's stdout goes to stdout),
// and returns when the command has exited.
//
// It returns nil only when the whole stream was verified, written, and the
// command exited 0. If the stream fails, the command is killed (with its
// process group) before its stdin is closed, so it never sees a partial
// stream end cleanly. stdin is watched after the session line: EOF (the SSH
// session died) or ctx cancellation kills the command and ends RecvMain.
func RecvMain(ctx context.Context, opts RecvOptions, stdin io.Reader, stdout io.Writer) error {
	if len(opts.Command) == 0 {
		return errors.New("transfer recv: no receive command given")
	}
	splice, err := spliceWanted(opts.Splice, opts.Command)
	if err != nil {
		return fmt.Errorf("transfer recv: %w", err)
	}
	in := bufio.NewReader(stdin)
	sess, err := ReadSession(in)
	if err != nil {
		return fmt.Errorf("transfer recv: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		io.Copy(io.Discard, in)
		cancel(errors.New("stdin closed (controller gone)"))
	}()

	ln, err := listenInRange(opts.ListenAddr, opts.PortMin, opts.PortMax)
	if err != nil {
		return fmt.Errorf("transfer recv: %w", err)
	}
	defer ln.Close()

	child, err := startReceiveCommand(opts, stdout)
	if err != nil {
		return fmt.Errorf("transfer recv: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if _, err := fmt.Fprintf(stdout, "%s%d\n", ListeningPrefix, port); err != nil {
		child.kill()
		return fmt.Errorf("transfer recv: announcing port: %w", err)
	}
	// A command that exits before the stream ends (zfs receive refused it)
	// fails the receive at once instead of at the next write or a timeout.
	recvCtx, stopRecv := context.WithCancelCause(ctx)
	defer stopRecv(nil)
	go func() {
		select {
		case <-child.exited:
			stopRecv(fmt.Errorf("%w: %s exited before the stream ended", ErrCommand, opts.Command[0]))
		case <-recvCtx.Done():
		}
	}()

	var out io.Writer = child.stdin
	if sw := newSpliceWriter(child.stdin); splice && sw != nil {
		out = sw
		// The pipe may reference the last buffers until the command has read them.
		defer sw.release()
	}
	stats, err := Receive(recvCtx, ln, sess, out, opts.ReceiveOptions)
	if opts.Report != nil {
		opts.Report(stats)
	}
	if err != nil {
		child.kill() // before its stdin is closed: a killed zfs receive discards the partial stream
		return err
	}
	child.stdin.Close()
	if err := child.waitOrKill(ctx); err != nil {
		return &IncompleteError{Reason: fmt.Errorf("%w: %s: %v", ErrCommand, opts.Command[0], err), Written: stats.Bytes}
	}
	return nil
}

func listenInRange(addr string, lo, hi int) (net.Listener, error) {
	if hi < lo {
		hi = lo
	}
	var lastErr error
	for p := lo; p <= hi; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(p)))
		if err == nil {
			return ln, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("no free port in %d-%d: %w", lo, hi, lastErr)
}

// receiveCommand is the running receive command (zfs receive) fed by a pipe.
type receiveCommand struct {
	cmd     *exec.Cmd
	stdin   *os.File
	exited  chan struct{} // closed when the command has exited
	waitErr error         // valid once exited is closed
}

func startReceiveCommand(opts RecvOptions, stdout io.Writer) (*receiveCommand, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	GrowPipe(pw)
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Stdin = pr
	cmd.Stdout = stdout
	cmd.Stderr = opts.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", opts.Command[0], err)
	}
	pr.Close() // the child holds its own copy
	c := &receiveCommand{cmd: cmd, stdin: pw, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// kill kills the command and everything it started (its process group),
// closes its stdin and waits until it is reaped.
func (c *receiveCommand) kill() {
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	c.stdin.Close()
	<-c.exited
}

func (c *receiveCommand) waitOrKill(ctx context.Context) error {
	select {
	case <-c.exited:
		return c.waitErr
	case <-ctx.Done():
		c.kill()
		return fmt.Errorf("killed: %w", context.Cause(ctx))
	}
}
