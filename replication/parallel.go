package replication

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"zcloud/transfer"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// Target is the host a parallel stream goes to: commands run on it over
// SSH, and the data connections dial DataHost.
type Target interface {
	zfsexec.Runner
	DataHost() string
}

// Parallel is the receive side of a replication over zcloud's encrypted
// parallel stream (package transfer).
type Parallel struct {
	// Binary is the local zcloud executable installed on the target as
	// the receiver, at ReceiverPath.
	Binary       string
	ReceiverPath zfsname.Device
	Cipher       string
	// Streams is the number of connections (0: as many as help, see
	// transfer.SendOptions); PortMin..PortMax, if set, the ports the
	// receiver may listen on.
	Streams, PortMin, PortMax int
	// Observe, if set, sees each session (TEST-ONLY: tests prove the key
	// never reaches history, logs or process lists).
	Observe func(transfer.Session)
	Log     *zap.Logger
}

// Receive installs the receiver on r if needed, starts `zcloud transfer
// recv -- <recvArgv>` there over SSH with a fresh session key on its stdin
// (never argv, logs or payloads), learns the port, and streams rd to it.
// It returns when the remote receive command has finished.
func (p Parallel) Receive(ctx context.Context, r Target, recvArgv []string, rd io.Reader) error {
	if err := EnsureReceiver(ctx, r, p.Binary, p.ReceiverPath, p.Log); err != nil {
		return err
	}
	sess, err := transfer.NewSession(p.Cipher)
	if err != nil {
		return err
	}
	if p.Observe != nil {
		p.Observe(sess)
	}
	argv := []string{p.ReceiverPath.String(), "transfer", "recv", "--streams", strconv.Itoa(p.Streams)}
	if p.PortMin > 0 {
		argv = append(argv, "--port", strconv.Itoa(p.PortMin), "--port-max", strconv.Itoa(p.PortMax))
	}
	argv = append(append(argv, "--"), recvArgv...)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	remoteDone := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, zfsexec.Cmd{Argv: argv, Stdin: stdinR, Stdout: stdoutW})
		stdoutW.CloseWithError(fmt.Errorf("receiver exited: %v", err))
		remoteDone <- err
	}()
	// The session goes on stdin; stdin then stays open: closing it tells
	// the receiver the controller is gone.
	go func() {
		if err := transfer.WriteSession(stdinW, sess); err != nil {
			stdinW.CloseWithError(err)
		}
	}()
	defer stdinW.Close()

	port, err := readListeningPort(stdoutR)
	if err != nil {
		cancel()
		if rerr := <-remoteDone; rerr != nil {
			return fmt.Errorf("start receiver on %s: %w", r.Host(), rerr)
		}
		return fmt.Errorf("start receiver on %s: %w", r.Host(), err)
	}
	go io.Copy(io.Discard, stdoutR) // the receive command's own output

	host := r.DataHost()
	_, sendErr := transfer.SendToReceiver(ctx, host, port, sess, rd, transfer.SendOptions{Streams: p.Streams})
	if sendErr != nil {
		// The remote side's error (its exit status and stderr) names the
		// cause better than a closed connection does.
		select {
		case rerr := <-remoteDone:
			if rerr != nil {
				return rerr
			}
		case <-time.After(10 * time.Second):
		}
		return fmt.Errorf("parallel stream to %s:%d: %w", host, port, sendErr)
	}
	// Keep stdin open until the remote side exits: its EOF means "the
	// controller is gone" and would kill zfs receive while it finishes.
	return <-remoteDone
}

func readListeningPort(r io.Reader) (int, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 256)).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("no LISTENING line from receiver: %w", err)
	}
	p, ok := strings.CutPrefix(strings.TrimSpace(line), strings.TrimSpace(transfer.ListeningPrefix))
	port, err := strconv.Atoi(strings.TrimSpace(p))
	if !ok || err != nil || port <= 0 || port > 65535 {
		return 0, fmt.Errorf("unexpected receiver output %q", line)
	}
	return port, nil
}
