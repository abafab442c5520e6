package activities

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"zcloud/config"
	"zcloud/transfer"
	"zcloud/zfsexec"
)

// receiveParallel is the receive side of a replication over zcloud's
// encrypted parallel stream: it installs the receiver on the target if
// needed, starts `zcloud transfer recv -- <recvArgv>` there over SSH with a
// fresh session key on its stdin (never argv, logs or payloads), learns the
// port, and streams r to it over tcfg.Streams connections (0: as many as
// help, see transfer.SendOptions). It returns when
// the remote receive command has finished.
func (a *Activities) receiveParallel(ctx context.Context, r *zfsexec.SSH, tcfg config.Target, recvArgv []string, rd io.Reader) error {
	if err := a.ensureReceiver(ctx, r, tcfg.ReceiverPath); err != nil {
		return err
	}
	sess, err := transfer.NewSession(tcfg.Cipher)
	if err != nil {
		return err
	}
	if a.SessionObserver != nil {
		a.SessionObserver(sess)
	}
	argv := []string{tcfg.ReceiverPath, "transfer", "recv", "--streams", strconv.Itoa(tcfg.Streams)}
	if tcfg.PortMin > 0 {
		argv = append(argv, "--port", strconv.Itoa(tcfg.PortMin), "--port-max", strconv.Itoa(tcfg.PortMax))
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
	_, sendErr := transfer.SendToReceiver(ctx, host, port, sess, rd, transfer.SendOptions{Streams: tcfg.Streams})
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
