package zfsexec

import (
	"context"
	"io"

	"zcloud/zfsname"
)

// ReceiveOptions are the zfs receive flags zcloud uses.
type ReceiveOptions struct {
	Force     bool               // -F: roll back the target to its newest snapshot first
	Resumable bool               // -s: keep partial state on interruption (OpenZFS)
	NoMount   bool               // -u
	Props     Props              // -o name=value (e.g. origin=, mountpoint=, readonly=on)
	Exclude   []zfsname.PropName // -x name: do not receive this property
}

// ReceiveArgv builds zfs receive for target.
func (z ZFS) ReceiveArgv(target zfsname.Dataset, o ReceiveOptions) ([]string, error) {
	c := z.Caps
	argv := []string{"zfs", "receive"}
	if o.Force {
		argv = append(argv, "-F")
	}
	if o.Resumable {
		if err := c.unsupported(c.ResumableReceive, "zfs receive -s (resumable)"); err != nil {
			return nil, err
		}
		argv = append(argv, "-s")
	}
	if o.NoMount || o.Props.Len() > 0 || len(o.Exclude) > 0 {
		if err := c.unsupported(c.ReceiveOptions, "zfs receive -u/-o/-x"); err != nil {
			return nil, err
		}
	}
	if o.NoMount {
		argv = append(argv, "-u")
	}
	argv = append(argv, o.Props.args("-o")...)
	for _, x := range o.Exclude {
		n, err := zfsname.ParsePropName(string(x))
		if err != nil {
			return nil, err
		}
		argv = append(argv, "-x", string(n))
	}
	return append(argv, target.String()), nil
}

// Receive reads a stream from r into target. Cancelling ctx kills zfs
// receive; with Resumable the partial state stays for a resume.
func (z ZFS) Receive(ctx context.Context, target zfsname.Dataset, o ReceiveOptions, r io.Reader) error {
	argv, err := z.ReceiveArgv(target, o)
	if err != nil {
		return err
	}
	_, err = z.R.Run(ctx, Cmd{Argv: argv, Stdin: r})
	return err
}

// AbortReceive discards target's partial receive state (zfs receive -A), so
// a fresh (non-resumed) send can start.
func (z ZFS) AbortReceive(ctx context.Context, target zfsname.Dataset) error {
	if err := z.Caps.unsupported(z.Caps.ResumableReceive, "zfs receive -A"); err != nil {
		return err
	}
	_, err := z.run(ctx, "zfs", "receive", "-A", target.String())
	return err
}
