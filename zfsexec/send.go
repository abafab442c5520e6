package zfsexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"zcloud/zfsname"
)

// SendFrom is the incremental source: a snapshot or (OpenZFS) a bookmark.
// The zero value means a full stream.
type SendFrom struct {
	Snapshot zfsname.Snapshot
	Bookmark zfsname.Bookmark
}

// FromSnapshot and FromBookmark build a SendFrom.
func FromSnapshot(s zfsname.Snapshot) SendFrom { return SendFrom{Snapshot: s} }
func FromBookmark(b zfsname.Bookmark) SendFrom { return SendFrom{Bookmark: b} }

func (f SendFrom) IsZero() bool { return f.Snapshot.IsZero() && f.Bookmark.String() == "" }
func (f SendFrom) String() string {
	if !f.Snapshot.IsZero() {
		return f.Snapshot.String()
	}
	return f.Bookmark.String()
}

// SendOptions are the zfs send flags zcloud uses.
type SendOptions struct {
	From          SendFrom            // -i/-I source; zero: full stream
	Intermediates bool                // -I (every snapshot between) instead of -i
	Raw           bool                // -w: encrypted blocks as stored (OpenZFS)
	Replicate     bool                // -R: descendants, properties, snapshots
	Props         bool                // -p: include properties
	Compressed    bool                // -c
	LargeBlock    bool                // -L
	Embedded      bool                // -e
	ResumeToken   zfsname.ResumeToken // -t: resume; excludes every other option
}

// SendArgv builds the zfs send command line for snap, refusing what Caps
// says this ZFS cannot do.
func (z ZFS) SendArgv(snap zfsname.Snapshot, o SendOptions) ([]string, error) {
	return sendArgv(z.Caps, snap, o, false)
}

func sendArgv(caps Capabilities, snap zfsname.Snapshot, o SendOptions, dryRun bool) ([]string, error) {
	argv := []string{"zfs", "send"}
	if dryRun {
		if err := caps.unsupported(caps.SendEstimate, "zfs send -nvP (size estimate)"); err != nil {
			return nil, err
		}
		argv = append(argv, "-nvP")
	}
	if o.ResumeToken != "" {
		if err := caps.unsupported(caps.ResumableReceive, "zfs send -t (resume)"); err != nil {
			return nil, err
		}
		if o != (SendOptions{ResumeToken: o.ResumeToken}) {
			return nil, errors.New("zfs send -t: a resume token carries its own options; set nothing else")
		}
		if _, err := zfsname.ParseResumeToken(string(o.ResumeToken)); err != nil {
			return nil, err
		}
		return append(argv, "-t", string(o.ResumeToken)), nil
	}
	if snap.IsZero() {
		return nil, errors.New("zfs send: no snapshot given")
	}
	flags := []struct {
		on      bool
		flag    string
		have    bool
		feature string
	}{
		{o.Raw, "-w", caps.RawSend, "zfs send -w (raw)"},
		{o.Replicate, "-R", true, ""},
		{o.Props, "-p", true, ""},
		{o.Compressed, "-c", caps.SendCompressed, "zfs send -c"},
		{o.LargeBlock, "-L", caps.SendCompressed, "zfs send -L"},
		{o.Embedded, "-e", caps.SendCompressed, "zfs send -e"},
	}
	for _, f := range flags {
		if !f.on {
			continue
		}
		if err := caps.unsupported(f.have, f.feature); err != nil {
			return nil, err
		}
		argv = append(argv, f.flag)
	}
	if !o.From.IsZero() {
		if !o.From.Snapshot.IsZero() && !o.From.Bookmark.Dataset().IsZero() {
			return nil, errors.New("zfs send: set From.Snapshot or From.Bookmark, not both")
		}
		if o.From.Bookmark.String() != "" {
			if err := caps.unsupported(caps.Bookmarks, "zfs send -i #bookmark"); err != nil {
				return nil, err
			}
			if o.Intermediates {
				return nil, errors.New("zfs send: -I cannot start at a bookmark (use -i)")
			}
		}
		if o.From.String() == snap.String() {
			return nil, fmt.Errorf("zfs send: incremental source and target are the same (%s)", snap)
		}
		flag := "-i"
		if o.Intermediates {
			flag = "-I"
		}
		argv = append(argv, flag, o.From.String())
	}
	return append(argv, snap.String()), nil
}

// Send streams snap (or a resume) to w. Cancelling ctx kills zfs send.
func (z ZFS) Send(ctx context.Context, snap zfsname.Snapshot, o SendOptions, w io.Writer) error {
	argv, err := z.SendArgv(snap, o)
	if err != nil {
		return err
	}
	_, err = z.R.Run(ctx, Cmd{Argv: argv, Stdout: w})
	return err
}

// EstimateSize asks zfs send -nvP for the stream size in bytes. On a ZFS
// without it (zfs-fuse) the error is an UnsupportedError: callers fall back
// to the snapshot's "used"/"written" or report no estimate.
func (z ZFS) EstimateSize(ctx context.Context, snap zfsname.Snapshot, o SendOptions) (int64, error) {
	argv, err := sendArgv(z.Caps, snap, o, true)
	if err != nil {
		return 0, err
	}
	res, err := z.R.Run(ctx, Cmd{Argv: argv})
	if err != nil {
		return 0, err
	}
	// OpenZFS prints the dry-run report on stdout (2.x); older on stderr.
	out := res.Stdout
	if len(out) == 0 {
		out = []byte(res.Stderr)
	}
	return parseSendEstimate(out)
}

// parseSendEstimate finds "size\t<bytes>" in -nvP output; the other lines
// (full/incremental, resume token contents) are informational.
func parseSendEstimate(out []byte) (int64, error) {
	const cmd = "zfs send -nvP"
	for i, line := range outputLines(out) {
		if !strings.HasPrefix(line, "size\t") {
			continue
		}
		f, err := tabFields(cmd, i+1, line, 2)
		if err != nil {
			return 0, err
		}
		v, err := parseUint(cmd, i+1, line, "size", f[1])
		if err != nil {
			return 0, err
		}
		return int64(v), nil
	}
	return 0, &ParseError{Cmd: cmd, Reason: "no size line"}
}
