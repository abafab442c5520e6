package archive

import (
	"context"
	"errors"
	"io"

	"zcloud/zfsexec"
)

// CommandReader runs argv (zfs send …) through the runner and returns its
// stdout, to use as UploadInput.Source. The command's failure is the
// reader's error at the end; Close stops the command and waits for it.
func CommandReader(ctx context.Context, r zfsexec.Runner, argv []string) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := r.Run(ctx, zfsexec.Cmd{Argv: argv, Stdout: pw})
		pw.CloseWithError(err) // nil: EOF
	}()
	return &cmdReader{PipeReader: pr, cancel: cancel, done: done}
}

type cmdReader struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

func (c *cmdReader) Close() error {
	c.PipeReader.CloseWithError(errors.New("reader closed"))
	c.cancel()
	<-c.done
	return nil
}

// CommandWriter starts argv (zfs receive …) through the runner with the
// writer as its stdin. Close ends the input and returns the command's
// result; Abort kills it (a restore that failed midway: zfs receive then
// discards the partial stream). Wrap it in OpenOnWrite to start the
// command only when the first verified byte is ready.
func CommandWriter(ctx context.Context, r zfsexec.Runner, argv []string) *CmdWriter {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	c := &CmdWriter{pw: pw, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		_, c.err = r.Run(ctx, zfsexec.Cmd{Argv: argv, Stdin: pr})
		pr.CloseWithError(errors.New("command exited"))
	}()
	return c
}

// CmdWriter is CommandWriter's writer.
type CmdWriter struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (c *CmdWriter) Write(b []byte) (int, error) { return c.pw.Write(b) }

// Close ends stdin and waits for the command's exit.
func (c *CmdWriter) Close() error {
	c.pw.Close()
	<-c.done
	c.cancel()
	return c.err
}

// Abort kills the command and waits for it.
func (c *CmdWriter) Abort() {
	c.cancel()
	c.pw.CloseWithError(errors.New("aborted"))
	<-c.done
}
