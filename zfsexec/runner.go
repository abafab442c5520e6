package zfsexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Cmd is one command to run, local or remote. Argv is never passed through a
// shell locally; over SSH every element is quoted (see Quote). Stdin may carry
// secrets (keys) and is never logged.
type Cmd struct {
	Argv   []string
	Stdin  io.Reader // nil: empty stdin
	Stdout io.Writer // nil: captured into Result.Stdout (bounded by MaxCapture)
}

// Result is what a finished command produced.
type Result struct {
	Stdout   []byte
	Stderr   string
	Duration time.Duration
}

// Runner runs commands on one host. Implementations: Local and SSH.
type Runner interface {
	// Run runs c to completion. Cancelling ctx kills the process (and, over
	// SSH, the remote process). A non-zero exit is an *ExitError.
	Run(ctx context.Context, c Cmd) (Result, error)
	// Host names where commands run ("local", "root@backup:22"), for logs and errors.
	Host() string
	// Close releases connections.
	Close() error
}

// MaxCapture bounds captured stdout; maxStderr bounds stderr kept for errors.
const (
	MaxCapture = 256 << 20
	maxStderr  = 64 << 10
)

// ExitError is a command that ran and failed. Kind classifies stderr.
type ExitError struct {
	Host   string
	Argv   []string
	Code   int
	Stderr string
	Kind   ErrorKind
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Sprintf("%s on %s: exit %d: %s", strings.Join(e.Argv, " "), e.Host, e.Code, msg)
}

// Is lets errors.Is(err, ErrDatasetNotFound) and friends match on the kind.
func (e *ExitError) Is(target error) bool {
	k, ok := target.(ErrorKind)
	return ok && k != KindUnknown && (k == e.Kind || k == ErrDatasetNotFound && e.Kind == ErrNoSuchPool)
}

// startFunc starts argv with the given streams and returns a wait function
// giving the exit code. It is what differs between local and SSH.
type startFunc func(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (wait func() (int, error), err error)

// run is the single choke point every command goes through: argv logging,
// timing, bounded stderr, classification of failures.
func run(ctx context.Context, log *zap.Logger, host string, start startFunc, c Cmd) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{}, errors.New("zfsexec: empty command")
	}
	if log == nil {
		log = zap.NewNop()
	}
	var stdout limitedBuffer
	stdout.limit = MaxCapture
	out := c.Stdout
	if out == nil {
		out = &stdout
	}
	stderr := limitedBuffer{limit: maxStderr}
	begin := time.Now()
	log.Debug("run", zap.String("host", host), zap.Strings("argv", c.Argv))
	wait, err := start(ctx, c.Argv, c.Stdin, out, &stderr)
	if err != nil {
		return Result{}, fmt.Errorf("start %s on %s: %w", c.Argv[0], host, err)
	}
	code, err := wait()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.String(), Duration: time.Since(begin)}
	if ctxErr := ctx.Err(); ctxErr != nil && (err != nil || code != 0) {
		log.Info("cancelled", zap.String("host", host), zap.Strings("argv", c.Argv), zap.Duration("took", res.Duration))
		return res, fmt.Errorf("%s on %s: %w", strings.Join(c.Argv, " "), host, ctxErr)
	}
	if err != nil {
		return res, fmt.Errorf("%s on %s: %w", strings.Join(c.Argv, " "), host, err)
	}
	if code != 0 {
		e := &ExitError{Host: host, Argv: c.Argv, Code: code, Stderr: res.Stderr, Kind: exitKind(code, res.Stderr)}
		log.Debug("failed", zap.String("host", host), zap.Strings("argv", c.Argv), zap.Int("code", code), zap.Duration("took", res.Duration))
		return res, e
	}
	log.Debug("done", zap.String("host", host), zap.String("cmd", c.Argv[0]), zap.Duration("took", res.Duration))
	return res, nil
}

// limitedBuffer keeps the first limit bytes and counts the rest, so a chatty
// command cannot exhaust memory.
type limitedBuffer struct {
	bytes.Buffer
	limit   int
	dropped int64
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.limit - b.Buffer.Len()
	if room <= 0 {
		b.dropped += int64(len(p))
		return len(p), nil
	}
	if len(p) > room {
		b.Buffer.Write(p[:room])
		b.dropped += int64(len(p) - room)
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

func (b *limitedBuffer) String() string {
	if b.dropped > 0 {
		return b.Buffer.String() + fmt.Sprintf("\n[... %d bytes dropped]", b.dropped)
	}
	return b.Buffer.String()
}
