// Package activities holds every side effect zcloud's workflows perform.
// Activities are methods on one struct that carries their dependencies; they
// are thin wrappers over zfsexec, cloud, transfer and archive code.
package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testgate"
	"zcloud/keys"
	"zcloud/metrics"
	"zcloud/progress"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// Activities is registered with the worker as a whole.
type Activities struct {
	Config *config.Config
	Log    *zap.Logger
	// Local runs commands on the worker's own host (the source pool).
	Local zfsexec.Runner
	Keys  keys.Source
	// ReceiverBinary is the zcloud executable copied to targets as the
	// transfer receiver; empty means the running executable.
	ReceiverBinary string
	// Metrics may be nil (nothing recorded).
	Metrics *metrics.Metrics
	// TestHooks is zero in production (but for a gate from the
	// environment); embedded so that a.Gate reads at the point it holds.
	TestHooks
	// Live is the board of running byte streams the CLI reads (package
	// progress); nil shows progress through heartbeats only.
	Live *progress.Board

	capsMu sync.Mutex
	caps   map[string]zfsexec.Capabilities
}

// New returns activities with a local runner.
func New(cfg *config.Config, log *zap.Logger) *Activities {
	return &Activities{Config: cfg, Log: log, Local: zfsexec.NewLocal(log), Keys: keys.Source{Dir: cfg.Keys.Dir, Command: cfg.Keys.Command},
		ReceiverBinary: cfg.ReceiverBinary, TestHooks: TestHooks{Gate: testgate.FromEnv()}, Live: &progress.Board{}}
}

// permanent wraps err as a non-retryable application error of errType.
// The message carries the whole story; no cause is attached, so operators
// read it once instead of a chain of wrappers.
func permanent(errType string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), errType, nil)
}

// classify turns known permanent failures into non-retryable errors and
// leaves the rest retryable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var hk *zfsexec.HostKeyMismatchError
	var np *zfsexec.NoPoolError
	var ee *zfsexec.ExitError
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &ae) && err != error(ae):
		// The SDK reads only the outermost error: a permanent error
		// wrapped with context ("receive: ...") would turn retryable and be
		// retried for hours. Keep its type and non-retryable flag, with the
		// whole message.
		if ae.NonRetryable() {
			msg := strings.Replace(err.Error(), ae.Error(), ae.Message(), 1)
			return temporal.NewNonRetryableApplicationError(msg, ae.Type(), nil)
		}
		return err
	case zfsname.IsInvalidName(err):
		return permanent(contract.ErrTypeInvalidName, err)
	case errors.As(err, &hk):
		return permanent(contract.ErrTypeHostKey, err)
	case errors.As(err, &np):
		return permanent(contract.ErrTypeNotFound, err)
	case errors.As(err, &ee):
		switch ee.Kind {
		case zfsexec.ErrDatasetNotFound:
			return permanent(contract.ErrTypeNotFound, err)
		case zfsexec.ErrKeyIncorrect:
			return permanent(contract.ErrTypeKeyIncorrect, err)
		case zfsexec.ErrKeyNotLoaded:
			// A raw-received copy never gets its key: retrying cannot help.
			return permanent(contract.ErrTypeStreamMismatch, fmt.Errorf("%w: the target dataset holds a raw (encrypted) copy, which takes raw streams only: send raw again (drop allow_plaintext_on_target), or replicate to a new target dataset", err))
		case zfsexec.ErrNoSpace:
			return permanent(contract.ErrTypeNoSpace, err)
		case zfsexec.ErrUsage:
			return permanent(contract.ErrTypeUnsupported, err)
		}
	}
	return err
}

// target returns the configured target and an SSH runner to it.
func (a *Activities) target(ctx context.Context, name string) (config.Target, *zfsexec.SSH, error) {
	return a.targetAt(ctx, name, contract.TargetAddr{})
}

// capabilities detects (once per host) what the ZFS on r can do.
func (a *Activities) capabilities(ctx context.Context, r zfsexec.Runner) (zfsexec.Capabilities, error) {
	a.capsMu.Lock()
	c, ok := a.caps[r.Host()]
	a.capsMu.Unlock()
	if ok {
		return c, nil
	}
	c, err := zfsexec.DetectCapabilities(ctx, r)
	if err != nil {
		return c, err
	}
	a.capsMu.Lock()
	if a.caps == nil {
		a.caps = map[string]zfsexec.Capabilities{}
	}
	a.caps[r.Host()] = c
	a.capsMu.Unlock()
	return c, nil
}
