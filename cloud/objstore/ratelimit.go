package objstore

import (
	"context"
	"io"

	"zcloud/ratelimit"
)

// WithRateLimit caps the bytes per second flowing through Put and Get,
// shared by all calls (a bandwidth budget for a WAN link). Metadata
// calls are not limited.
func WithRateLimit(s Store, bytesPerSec int64) Store {
	if bytesPerSec <= 0 {
		return s
	}
	return &rateStore{Store: s, b: ratelimit.New(bytesPerSec, max(bytesPerSec/4, 64<<10))}
}

type rateStore struct {
	Store
	b *ratelimit.Bucket
}

func (r *rateStore) Put(ctx context.Context, key string, rd io.Reader, size int64, opts PutOptions) (ObjectInfo, error) {
	return r.Store.Put(ctx, key, ratelimit.Reader(ctx, rd, r.b), size, opts)
}

func (r *rateStore) Get(ctx context.Context, key string, rng Range) (io.ReadCloser, error) {
	rc, err := r.Store.Get(ctx, key, rng)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{ratelimit.Reader(ctx, rc, r.b), rc}, nil
}
