package archive

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"filippo.io/age"

	"zcloud/cloud/objstore"
)

// ErrWrongKey: none of the given identities can decrypt the data.
var ErrWrongKey = errors.New("archive: wrong private key: no identity matches the archive's recipients")

// RestoreInput is one stream to bring back.
type RestoreInput struct {
	Store      objstore.Store
	Stream     Stream
	Identities []age.Identity
	// SpoolDir holds parts while they are verified ("" = os.TempDir()).
	// It needs room for three parts, or the whole stored stream with
	// VerifyAll.
	SpoolDir string
	// VerifyAll downloads and verifies every part before the first byte is
	// written, so a damaged stream never starts a zfs receive at all.
	// Otherwise each part is verified before its bytes are used: a damaged
	// part k stops the restore after parts 1..k-1 (all verified) were
	// written, and zfs receive discards the incomplete stream.
	VerifyAll bool
	Progress  func(plainBytes int64)
}

// RestoreResult is what Restore wrote.
type RestoreResult struct {
	PlainSize   int64
	PlainSHA256 string
	// Repaired lists the part objects rebuilt from parity (parity streams).
	Repaired []Repair
}

// Restore downloads in.Stream part by part, checks every part's size and
// SHA-256 against the manifest before any of its bytes go further, checks
// the whole stored SHA-256, decrypts with the identities and writes the
// plain stream to w (zfs receive's stdin), checking the plain size and
// SHA-256 at the end. Corruption is a *objstore.CorruptError naming the
// object and part; a wrong key is ErrWrongKey, reported before anything is
// written. Use OpenOnWrite for w so zfs receive starts only with verified
// data in hand.
func Restore(ctx context.Context, in RestoreInput, w io.Writer) (RestoreResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parts := in.Stream.Parts
	if len(parts) == 0 { // no part list: the whole object is one part
		parts = []objstore.Part{{Number: 1, Size: in.Stream.StoredSize, SHA256: in.Stream.StoredSHA256}}
	}

	verified := make(chan string, 1) // spool files, in order
	if in.VerifyAll {
		verified = make(chan string, len(parts))
	}
	var fetchErr error
	var repaired []Repair
	var fetchDone sync.WaitGroup
	fetchDone.Add(1)
	go func() {
		defer fetchDone.Done()
		defer close(verified)
		repaired, fetchErr = fetchParts(ctx, in, parts, verified)
	}()
	if in.VerifyAll {
		fetchDone.Wait()
		if fetchErr != nil {
			drain(verified)
			return RestoreResult{}, fetchErr
		}
	}

	// Feed verified parts, in order, into the decrypter.
	storedR, storedW := newRingPipe(ringSize)
	var feedDone sync.WaitGroup
	feedDone.Add(1)
	go func() {
		defer feedDone.Done()
		for path := range verified {
			if err := copyFile(storedW, path); err != nil {
				storedW.CloseWithError(err)
				drain(verified)
				return
			}
		}
		fetchDone.Wait()
		storedW.CloseWithError(fetchErr) // nil: EOF
	}()
	res, err := decryptTo(w, storedR, in)
	storedR.CloseWithError(errors.New("restore stopped"))
	cancel()
	fetchDone.Wait()
	feedDone.Wait()
	res.Repaired = repaired
	if fetchErr != nil && !errors.Is(fetchErr, context.Canceled) {
		return res, fetchErr // the root cause, even if decryption saw it first
	}
	return res, err
}

func decryptTo(w io.Writer, stored io.Reader, in RestoreInput) (RestoreResult, error) {
	r, err := age.Decrypt(stored, in.Identities...)
	var nm *age.NoIdentityMatchError
	if errors.As(err, &nm) {
		return RestoreResult{}, fmt.Errorf("%s: %w", in.Stream.Key, ErrWrongKey)
	}
	if err != nil {
		return RestoreResult{}, fmt.Errorf("%s: decrypt: %w", in.Stream.Key, err)
	}
	h := sha256.New()
	pw := &progressWriter{w: io.MultiWriter(w, h), f: in.Progress}
	n, err := io.CopyBuffer(pw, r, make([]byte, readChunk))
	res := RestoreResult{PlainSize: n, PlainSHA256: hex.EncodeToString(h.Sum(nil))}
	if err != nil {
		return res, fmt.Errorf("%s: %w", in.Stream.Key, err)
	}
	if in.Progress != nil {
		in.Progress(n)
	}
	if n != in.Stream.PlainSize || res.PlainSHA256 != in.Stream.PlainSHA256 {
		return res, &objstore.CorruptError{Key: in.Stream.Key, Detail: fmt.Sprintf(
			"decrypted stream is %d bytes sha256 %s, manifest says %d bytes %s", n, res.PlainSHA256, in.Stream.PlainSize, in.Stream.PlainSHA256)}
	}
	return res, nil
}

// fetchParts downloads each part to a spool file, verifies it and sends
// the file on out. The receiver deletes the files it consumed. A part of
// a parity stream that is lost or damaged is rebuilt from its group
// (returned in the Repair list).
func fetchParts(ctx context.Context, in RestoreInput, parts []objstore.Part, out chan<- string) ([]Repair, error) {
	whole := sha256.New()
	var rep *repairer
	if in.Stream.Parity != nil {
		var err error
		if rep, err = newRepairer(in); err != nil {
			return nil, err
		}
	}
	repairs := func() []Repair {
		if rep == nil {
			return nil
		}
		return rep.repaired
	}
	var off int64
	for _, p := range parts {
		if p.Offset != off {
			return repairs(), fmt.Errorf("%s: manifest part %d starts at %d, expected %d", in.Stream.Key, p.Number, p.Offset, off)
		}
		path, err := fetchOrRepair(ctx, in, p, whole, rep)
		if err != nil {
			return repairs(), err
		}
		select {
		case out <- path:
		case <-ctx.Done():
			os.Remove(path)
			return repairs(), ctx.Err()
		}
		off += p.Size
	}
	if off != in.Stream.StoredSize {
		return repairs(), &objstore.CorruptError{Key: in.Stream.Key, Detail: fmt.Sprintf("parts cover %d bytes, stored size is %d", off, in.Stream.StoredSize)}
	}
	if got := hex.EncodeToString(whole.Sum(nil)); got != in.Stream.StoredSHA256 {
		return repairs(), &objstore.CorruptError{Key: in.Stream.Key, Detail: fmt.Sprintf("stored sha256 %s, manifest says %s", got, in.Stream.StoredSHA256)}
	}
	return repairs(), nil
}

// fetchOrRepair spools part p: downloaded and verified, or (parity
// streams) taken from its rebuilt group.
func fetchOrRepair(ctx context.Context, in RestoreInput, p objstore.Part, whole hash.Hash, rep *repairer) (string, error) {
	if rep == nil {
		return fetchPart(ctx, in, p, whole)
	}
	if b, ok := rep.held(p); ok {
		return spoolBytes(in, b, whole)
	}
	// The whole-stream hash must not see a bad part's bytes: keep its
	// state to go back to.
	state, err := whole.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return "", err
	}
	path, err := fetchPart(ctx, in, p, whole)
	if err == nil || !isDamage(err) {
		return path, err
	}
	if err := whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return "", err
	}
	if err := rep.rebuild(ctx, p, err); err != nil {
		return "", err
	}
	b, _ := rep.held(p)
	return spoolBytes(in, b, whole)
}

func spoolBytes(in RestoreInput, b []byte, whole hash.Hash) (string, error) {
	f, err := os.CreateTemp(in.SpoolDir, "zcloud-restore-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	whole.Write(b)
	return f.Name(), nil
}

// partSource is where part p's bytes are: a range of the stream's object,
// or (part-object layout) a whole part object.
func partSource(s Stream, p objstore.Part) (string, objstore.Range) {
	if s.Parity != nil {
		return PartKey(s.Key, p.Number), objstore.Range{}
	}
	return s.Key, objstore.Range{Off: p.Offset, Len: p.Size}
}

func fetchPart(ctx context.Context, in RestoreInput, p objstore.Part, whole hash.Hash) (string, error) {
	key, rng := partSource(in.Stream, p)
	rc, err := in.Store.Get(ctx, key, rng)
	if err != nil {
		return "", fmt.Errorf("%s part %d: %w", key, p.Number, err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(in.SpoolDir, "zcloud-restore-*")
	if err != nil {
		return "", err
	}
	keep := false
	defer func() {
		f.Close()
		if !keep {
			os.Remove(f.Name())
		}
	}()
	// One pass: spool, part hash and whole-stream hash (parts come in
	// order; a bad part ends the restore or is rebuilt, see fetchOrRepair).
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h, whole), io.LimitReader(rc, p.Size+1), make([]byte, readChunk))
	if err != nil {
		return "", fmt.Errorf("%s part %d: download: %w", key, p.Number, err)
	}
	if n != p.Size {
		return "", &objstore.CorruptError{Key: key, Part: p.Number, Detail: fmt.Sprintf("%d bytes, manifest says %d", n, p.Size)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return "", &objstore.CorruptError{Key: key, Part: p.Number, Detail: fmt.Sprintf("sha256 %s, manifest says %s", got, p.SHA256)}
	}
	keep = true
	return f.Name(), nil
}

func copyFile(w io.Writer, path string) error {
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(w, f, make([]byte, readChunk))
	return err
}

func drain(ch <-chan string) {
	for p := range ch {
		os.Remove(p)
	}
}

type progressWriter struct {
	w    io.Writer
	f    func(int64)
	n    int64
	next int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.f != nil && p.n >= p.next {
		p.f(p.n)
		p.next = p.n + ProgressEvery
	}
	return n, err
}

// OpenOnWrite is a writer that calls open on its first Write: give it the
// function that starts zfs receive, and a restore that fails before any
// verified byte exists never starts the receive.
func OpenOnWrite(open func() (io.WriteCloser, error)) *LazyWriter { return &LazyWriter{open: open} }

// LazyWriter is OpenOnWrite's writer.
type LazyWriter struct {
	open func() (io.WriteCloser, error)
	w    io.WriteCloser
	err  error
}

func (l *LazyWriter) Write(b []byte) (int, error) {
	if l.w == nil && l.err == nil {
		l.w, l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.w.Write(b)
}

// Opened reports whether open was called.
func (l *LazyWriter) Opened() bool { return l.w != nil || l.err != nil }

// Close closes the opened writer, if any.
func (l *LazyWriter) Close() error {
	if l.w == nil {
		return nil
	}
	return l.w.Close()
}
