package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Splitter cuts a stream into parts and hands them to a backend's upload
// function, several at a time, with bounded memory: at most Parallel+1
// part buffers exist at once whatever the stream's length. The whole
// stream is hashed in order while reading; each part is hashed by the
// worker that uploads it, so the hashes overlap with I/O and each other.
type Splitter struct {
	PartSize int64
	MaxParts int // 0: unlimited
	Parallel int // parts uploaded at once (>= 1)
	// GrowEvery > 0 doubles the part size after every GrowEvery parts, up
	// to MaxPartSize, so a stream far longer than expected still fits in
	// MaxParts (S3 allows parts of different sizes; vaults do not).
	GrowEvery   int
	MaxPartSize int64
	// Begin is called once, before any part, with whether the whole stream
	// fit in the first part (backends use a single-request upload then).
	Begin func(ctx context.Context, single bool) error
	// Upload stores one part; data is only valid during the call. The
	// part's SHA256 is already set.
	Upload func(ctx context.Context, p Part, data []byte) error
}

// SplitResult is what a finished split produced.
type SplitResult struct {
	Size   int64
	SHA256 string // hex, whole stream
	Parts  []Part
}

// Run reads r to EOF and uploads every part. On error it stops reading,
// waits for parts in flight and returns the first error.
func (s *Splitter) Run(ctx context.Context, r io.Reader) (SplitResult, error) {
	if s.PartSize <= 0 || s.Parallel < 1 {
		return SplitResult{}, fmt.Errorf("splitter: part size %d, parallel %d", s.PartSize, s.Parallel)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	free := make(chan []byte, s.Parallel+1)
	for i := 0; i < s.Parallel+1; i++ {
		free <- nil // allocated on first use: small streams stay small
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		parts  []Part
		whole  = sha256.New()
		res    SplitResult
		sem    = make(chan struct{}, s.Parallel)
		failed error
	)
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
		cancel(err)
	}
	partSize := s.PartSize
	for n := 1; ; n++ {
		if s.GrowEvery > 0 && n > 1 && (n-1)%s.GrowEvery == 0 {
			partSize = min(partSize*2, max(s.MaxPartSize, partSize))
		}
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if int64(cap(buf)) < partSize {
			buf = make([]byte, partSize) // first use, or the part size grew
		}
		buf = buf[:partSize]
		k, err := io.ReadFull(r, buf)
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			fail(fmt.Errorf("read part %d: %w", n, err))
			break
		}
		if k == 0 && n > 1 {
			break // stream ended exactly at a part boundary
		}
		if s.MaxParts > 0 && n > s.MaxParts {
			fail(fmt.Errorf("%w: more than %d parts of %d bytes", ErrTooManyParts, s.MaxParts, partSize))
			break
		}
		whole.Write(buf[:k])
		p := Part{Number: n, Offset: res.Size, Size: int64(k)}
		res.Size += int64(k)
		if n == 1 && s.Begin != nil {
			single := eof
			if !single {
				// A full first part: peek one byte to learn whether more follows.
				var one [1]byte
				m, perr := io.ReadFull(r, one[:])
				if perr != nil && !errors.Is(perr, io.EOF) {
					fail(fmt.Errorf("read: %w", perr))
					break
				}
				single = m == 0
				if m == 1 {
					r = io.MultiReader(bytes.NewReader(one[:]), r)
				}
			}
			if err := s.Begin(ctx, single); err != nil {
				fail(err)
				break
			}
			eof = eof || single
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(p Part, data []byte) {
			defer wg.Done()
			defer func() { <-sem; free <- data[:cap(data)] }()
			sum := sha256.Sum256(data)
			p.SHA256 = hex.EncodeToString(sum[:])
			if err := s.Upload(ctx, p, data); err != nil {
				fail(fmt.Errorf("part %d: %w", p.Number, err))
				return
			}
			mu.Lock()
			parts = append(parts, p)
			mu.Unlock()
		}(p, buf[:k])
		if eof {
			break
		}
	}
	wg.Wait()
	if failed != nil {
		return SplitResult{}, failed
	}
	if err := ctx.Err(); err != nil {
		return SplitResult{}, context.Cause(ctx)
	}
	sortParts(parts)
	res.Parts = parts
	res.SHA256 = hex.EncodeToString(whole.Sum(nil))
	return res, nil
}

func sortParts(p []Part) {
	slices.SortFunc(p, func(a, b Part) int { return a.Number - b.Number })
}
