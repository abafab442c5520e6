package objstore

import (
	"context"
	"io"
	"math/rand/v2"
	"time"
)

// RetryOptions tune WithRetry.
type RetryOptions struct {
	Attempts int           // total tries per call; default 5
	Base     time.Duration // first backoff; default 500 ms, doubling
	Max      time.Duration // backoff cap; default 30 s
	// OnRetry, when set, hears about every failed try that will be retried.
	OnRetry func(op, key string, attempt int, err error)
}

// WithRetry retries calls that fail with a transient error, with
// exponential backoff and full jitter, until ctx ends. Permanent errors
// (IsPermanent) return at once. Put is retried only when its reader can
// seek back to where it started (a live zfs send stream cannot; the
// caller's activity retry restarts it). Get retries opening, not reads
// already under way.
func WithRetry(s Store, o RetryOptions) Store {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Base <= 0 {
		o.Base = 500 * time.Millisecond
	}
	if o.Max <= 0 {
		o.Max = 30 * time.Second
	}
	return &retryStore{s: s, o: o}
}

type retryStore struct {
	s Store
	o RetryOptions
}

func (r *retryStore) do(ctx context.Context, op, key string, f func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = f(); err == nil || IsPermanent(err) || ctx.Err() != nil || attempt >= r.o.Attempts {
			return err
		}
		if r.o.OnRetry != nil {
			r.o.OnRetry(op, key, attempt, err)
		}
		d := min(r.o.Base<<(attempt-1), r.o.Max)
		select {
		case <-time.After(rand.N(d) + d/10):
		case <-ctx.Done():
			return err
		}
	}
}

func (r *retryStore) Put(ctx context.Context, key string, rd io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	sk, ok := rd.(io.Seeker)
	var start int64
	if ok {
		var err error
		if start, err = sk.Seek(0, io.SeekCurrent); err != nil {
			ok = false
		}
	}
	if !ok {
		return r.s.Put(ctx, key, rd, size, opts)
	}
	var info ObjectInfo
	first := true
	err := r.do(ctx, "put", key, func() error {
		if !first {
			if _, err := sk.Seek(start, io.SeekStart); err != nil {
				return Permanent(err)
			}
		}
		first = false
		var err error
		info, err = r.s.Put(ctx, key, rd, size, opts)
		return err
	})
	return info, err
}

func (r *retryStore) Get(ctx context.Context, key string, rng Range) (rc io.ReadCloser, err error) {
	err = r.do(ctx, "get", key, func() (err error) { rc, err = r.s.Get(ctx, key, rng); return err })
	return rc, err
}

func (r *retryStore) Head(ctx context.Context, key string) (info ObjectInfo, err error) {
	err = r.do(ctx, "head", key, func() (err error) { info, err = r.s.Head(ctx, key); return err })
	return info, err
}

func (r *retryStore) List(ctx context.Context, prefix string) (l []ObjectInfo, err error) {
	err = r.do(ctx, "list", prefix, func() (err error) { l, err = r.s.List(ctx, prefix); return err })
	return l, err
}

func (r *retryStore) Delete(ctx context.Context, key string) error {
	return r.do(ctx, "delete", key, func() error { return r.s.Delete(ctx, key) })
}

func (r *retryStore) RequestRestore(ctx context.Context, key string, tier Tier, days int) error {
	return r.do(ctx, "restore", key, func() error { return r.s.RequestRestore(ctx, key, tier, days) })
}

func (r *retryStore) RestoreStatus(ctx context.Context, key string) (st RestoreStatus, err error) {
	err = r.do(ctx, "restore-status", key, func() (err error) { st, err = r.s.RestoreStatus(ctx, key); return err })
	return st, err
}
