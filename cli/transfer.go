package cli

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"zcloud/transfer"
)

func transferCmd() *cobra.Command {
	c := &cobra.Command{Use: "transfer", Short: "The encrypted parallel stream (the receiver side runs on targets)"}
	var o transfer.RecvOptions
	recv := &cobra.Command{
		Use:   "recv [flags] -- RECEIVE-COMMAND...",
		Short: "Receive one encrypted parallel stream into a command's stdin (run by the controller over SSH)",
		Long: `Run on a target by the zcloud worker over SSH; not meant to be typed by hand.
It reads a one-line session (cipher, id, key) from stdin, listens on a TCP
port, prints "LISTENING <port>", accepts only connections that prove the
session key, reassembles the authenticated frames in order and writes them to
RECEIVE-COMMAND's stdin (e.g. zfs receive). If the stream fails the command
is killed, so it never sees a partial stream as complete. When stdin closes
(the SSH session ended) everything stops.`,
		Example: "  zcloud transfer recv -- zfs receive -s backup/data",
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() < 0 || len(args) == 0 {
				return errors.New("give the receive command after --")
			}
			o.Command = args
			o.Stderr = os.Stderr
			ctx, cancel := signalContext()
			defer cancel()
			return transfer.RecvMain(ctx, o, os.Stdin, os.Stdout)
		},
	}
	f := recv.Flags()
	f.StringVar(&o.ListenAddr, "listen", "", "address to listen on (empty: all interfaces)")
	f.IntVar(&o.PortMin, "port", 0, "port to listen on, or the first of a range (0: any free port)")
	f.IntVar(&o.PortMax, "port-max", 0, "last port of the range")
	f.IntVar(&o.Streams, "streams", 0, "most parallel connections the sender may open (0: any up to 256)")
	f.IntVar(&o.Window, "window", transfer.DefaultWindow, "frames held for reordering (memory is about window x chunk size)")
	f.StringVar(&o.Splice, "splice", transfer.SpliceAuto, "hand the stream to the command with vmsplice instead of copying it: auto (for zfs receive and cat, which read their stdin), always, never")
	c.AddCommand(recv)
	return c
}
