package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"zcloud/transfer"
)

// roleFlags are what the orchestrator passes to its re-executed children.
type roleFlags struct {
	port, streams, chunk, window int
	cpuProfile                   string
	splice                       string
	host                         string
}

func (f *roleFlags) register() {
	flag.IntVar(&f.port, "port", 0, "internal: receiver port (send role)")
	flag.IntVar(&f.streams, "role-streams", 4, "internal")
	flag.IntVar(&f.chunk, "role-chunk", 0, "internal")
	flag.IntVar(&f.window, "role-window", 0, "internal")
	flag.StringVar(&f.splice, "role-splice", transfer.SpliceAlways, "internal")
	flag.StringVar(&f.cpuProfile, "role-cpuprofile", "", "internal: write a CPU profile of this role to this path prefix")
	flag.StringVar(&f.host, "role-host", "127.0.0.1", "internal: the receiver's address")
}

// runRole is one side of a zcloud transfer, as `zcloud transfer recv` on the
// target and the replication activity on the controller would run it.
func runRole(role string, f roleFlags) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile + "." + role)
		if err != nil {
			return err
		}
		defer pf.Close()
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	switch role {
	case "sink":
		return runSink(f.port)
	case "recv":
		// The receive command stands in for `zfs receive`: it reads the
		// whole stream from a pipe, like `ssh ... 'cat >/dev/null'` below.
		return transfer.RecvMain(ctx, transfer.RecvOptions{
			ListenAddr: f.host,
			Command:    []string{"sh", "-c", "exec cat >/dev/null"},
			Splice:     f.splice, // sh execs cat, which reads its stdin
			Report: func(st transfer.Stats) {
				fmt.Fprintf(os.Stderr, "    zcloud receiver: %d bytes, %d streams, %d reconnects, %d reorder-window stalls\n",
					st.Bytes, st.Streams, st.Reconnects, st.WindowStalls)
			},
			ReceiveOptions: transfer.ReceiveOptions{Streams: f.streams, Window: f.window},
		}, os.Stdin, os.Stdout)
	case "send":
		// The session arrives on fd 3, the stream on stdin (as from `zfs send`).
		sessFile := os.NewFile(3, "session")
		sess, err := transfer.ReadSession(bufio.NewReader(sessFile))
		if err != nil {
			return err
		}
		st, err := transfer.SendToReceiver(ctx, f.host, f.port, sess, os.Stdin, transfer.SendOptions{
			Streams: f.streams, ChunkSize: f.chunk,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "    zcloud sender: %d bytes in %d frames, %v, %d streams, %d reconnects, %d send-window stalls\n",
			st.Bytes, st.Frames, st.Duration.Round(time.Millisecond), st.Streams, st.Reconnects, st.SendStalls)
		return nil
	}
	return errors.New("unknown role " + role)
}
