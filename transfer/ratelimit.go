package transfer

import (
	"context"
	"time"
)

// tokenBucket limits a single goroutine to rate bytes/s with a burst of one
// chunk. Tokens may go negative (a whole chunk is taken at once); the caller
// then sleeps until the debt is repaid, so the long-run rate is exact.
type tokenBucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(bytesPerSec int64, burst int) *tokenBucket {
	if bytesPerSec <= 0 {
		return nil
	}
	return &tokenBucket{rate: float64(bytesPerSec), burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

func (b *tokenBucket) wait(ctx context.Context, n int) error {
	if b == nil {
		return nil
	}
	now := time.Now()
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(-b.tokens / b.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
