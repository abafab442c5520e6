package zfsexec

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Local runs commands on this machine with os/exec (no shell).
type Local struct {
	Log *zap.Logger
	// PathPrefix, when set, is prepended to argv[0] lookups (tests use it to
	// point at wrapper scripts); empty means $PATH.
	PathPrefix string
}

// NewLocal returns a Local runner logging to log.
func NewLocal(log *zap.Logger) *Local { return &Local{Log: log} }

func (l *Local) Host() string { return "local" }
func (l *Local) Close() error { return nil }

func (l *Local) Run(ctx context.Context, c Cmd) (Result, error) {
	return run(ctx, l.Log, l.Host(), l.start, c)
}

func (l *Local) start(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (func() (int, error), error) {
	name := argv[0]
	if l.PathPrefix != "" {
		name = l.PathPrefix + "/" + name
	}
	cmd := exec.Command(name, argv[1:]...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// Own process group, so cancellation kills children (a pipeline helper
	// started by the command) too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		case <-done:
		}
	}()
	return func() (int, error) {
		err := cmd.Wait()
		close(done)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ee.ExitCode() < 0 { // killed by a signal
				return 128 + int(ee.Sys().(syscall.WaitStatus).Signal()), nil
			}
			return ee.ExitCode(), nil
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	}, nil
}
