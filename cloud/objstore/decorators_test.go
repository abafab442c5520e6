package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/objstoretest"
)

// flaky fails the first n calls of every operation with a transient error.
type flaky struct {
	objstore.Store
	n     int
	calls map[string]int
}

var errFlaky = errors.New("connection reset (flaky test store)")

func (f *flaky) fail(op string) error {
	f.calls[op]++
	if f.calls[op] <= f.n {
		return errFlaky
	}
	return nil
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, size int64, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := f.fail("put"); err != nil {
		io.CopyN(io.Discard, r, 10) // consume some, as a failed upload does
		return objstore.ObjectInfo{}, err
	}
	return f.Store.Put(ctx, key, r, size, o)
}

func (f *flaky) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := f.fail("head"); err != nil {
		return objstore.ObjectInfo{}, err
	}
	return f.Store.Head(ctx, key)
}

func newLocal(t *testing.T) objstore.Store {
	s, err := local.New(t.TempDir(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRetryTransient(t *testing.T) {
	f := &flaky{Store: newLocal(t), n: 2, calls: map[string]int{}}
	var retries int
	s := objstore.WithRetry(f, objstore.RetryOptions{Base: time.Millisecond, OnRetry: func(string, string, int, error) { retries++ }})
	data := objstoretest.Data(1, 5000)
	info, err := s.Put(context.Background(), "k", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
	if err != nil || info.Size != 5000 {
		t.Fatalf("put through retry: %+v %v", info, err)
	}
	if _, err := s.Head(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if retries != 4 {
		t.Fatalf("retries %d, want 4", retries)
	}
}

func TestRetryStopsOnPermanent(t *testing.T) {
	calls := 0
	s := objstore.WithRetry(newLocal(t), objstore.RetryOptions{Base: time.Millisecond, OnRetry: func(string, string, int, error) { calls++ }})
	if _, err := s.Head(context.Background(), "missing"); !errors.Is(err, objstore.ErrNotFound) || calls != 0 {
		t.Fatalf("head missing: %v after %d retries", err, calls)
	}
}

func TestRetryDoesNotReplayStreams(t *testing.T) {
	f := &flaky{Store: newLocal(t), n: 1, calls: map[string]int{}}
	s := objstore.WithRetry(f, objstore.RetryOptions{Base: time.Millisecond})
	stream := struct{ io.Reader }{bytes.NewReader(make([]byte, 100))}
	if _, err := s.Put(context.Background(), "k", stream, -1, objstore.PutOptions{}); !errors.Is(err, errFlaky) {
		t.Fatalf("a non-seekable stream must not be retried: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	s := objstore.WithRateLimit(newLocal(t), 1<<20) // 1 MiB/s
	data := make([]byte, 1<<20)
	start := time.Now()
	if _, err := s.Put(context.Background(), "k", bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// The burst (a quarter second's worth) passes at once; the rest waits.
	if d := time.Since(start); d < 600*time.Millisecond || d > 3*time.Second {
		t.Fatalf("1 MiB at 1 MiB/s took %s", d)
	}
}

func TestChoosePartSize(t *testing.T) {
	const mib, tib = 1 << 20, 1 << 40
	for _, c := range []struct {
		expected, preferred int64
		l                   objstore.PartLimits
		want                int64
	}{
		{100 * mib, 16 * mib, objstore.S3Limits, 16 * mib},
		{5 * tib, 16 * mib, objstore.S3Limits, 1049 * mib}, // 2×5 TiB / 10000, rounded up to MiB
		{1 * tib, 1 * mib, objstore.VaultLimits, 256 * mib},
		{10, 3 * mib, objstore.VaultLimits, 4 * mib}, // power of two
		{1 << 50, 0, objstore.S3Limits, 5 << 30},     // capped at S3's max
	} {
		got := objstore.ChoosePartSize(c.expected, c.preferred, c.l)
		if got != c.want {
			t.Errorf("ChoosePartSize(%d, %d) = %d, want %d", c.expected, c.preferred, got, c.want)
		}
		if c.expected < 1<<50 && got*int64(c.l.MaxParts) < c.expected*objstore.Headroom {
			t.Errorf("part size %d cannot hold %d in %d parts", got, c.expected, c.l.MaxParts)
		}
	}
}

// A stream of unknown size far beyond its estimate still fits: the
// splitter grows the part size instead of needing part 10,001.
func TestSplitterGrowsParts(t *testing.T) {
	var parts []objstore.Part
	sp := objstore.Splitter{PartSize: 10, MaxParts: 20, Parallel: 2, GrowEvery: 2, MaxPartSize: 1 << 20,
		Upload: func(_ context.Context, p objstore.Part, _ []byte) error { return nil }}
	res, err := sp.Run(context.Background(), bytes.NewReader(make([]byte, 10000)))
	if err != nil {
		t.Fatal(err)
	}
	parts = res.Parts
	if res.Size != 10000 || len(parts) > 20 {
		t.Fatalf("size %d in %d parts", res.Size, len(parts))
	}
	sp.GrowEvery = 0
	if _, err := sp.Run(context.Background(), bytes.NewReader(make([]byte, 10000))); !errors.Is(err, objstore.ErrTooManyParts) {
		t.Fatalf("fixed part size over the limit: %v", err)
	}
}
