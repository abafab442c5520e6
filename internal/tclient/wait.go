package tclient

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"zcloud/config"
)

// Backoff between attempts of DialWait: doubling from First up to Max.
type Backoff struct {
	First, Max time.Duration
}

// DefaultBackoff is what the worker uses: a Temporal that comes up within
// seconds (compose, systemd starting both at once) is found at once, one
// that is down for long is asked every 30 s.
var DefaultBackoff = Backoff{First: time.Second, Max: 30 * time.Second}

// DialWait is Dial for services: while Temporal is unreachable (not started
// yet, restarting) it logs why and tries again with backoff until ctx ends,
// instead of exiting at once. Errors that waiting cannot fix (a bad TLS
// file, a refused certificate) return at once.
func DialWait(ctx context.Context, c config.Temporal, log *zap.Logger, b Backoff, options ...Option) (client.Client, error) {
	wait := b.First
	for attempt := 1; ; attempt++ {
		cl, err := Dial(c, log, options...)
		if err == nil {
			if attempt > 1 {
				log.Info("connected to Temporal", zap.String("address", c.Address), zap.Int("attempts", attempt))
			}
			return cl, nil
		}
		if !Unreachable(err) {
			return nil, err
		}
		log.Warn("waiting for Temporal: not reachable, trying again", zap.String("address", c.Address),
			zap.Int("attempt", attempt), zap.Duration("retry_in", wait), zap.Error(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, errors.Join(ctx.Err(), err)
		case <-t.C:
		}
		wait = min(2*wait, b.Max)
	}
}

// Unreachable says whether err means the server could not be reached (or
// did not answer in time): worth waiting for.
func Unreachable(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	if errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(errors.Unwrap(err)) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}
