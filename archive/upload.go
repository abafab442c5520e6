package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
)

// UploadInput is one stream to archive.
type UploadInput struct {
	Store objstore.Store
	Key   string // StreamKey(...)
	// Source is the plain stream (zfs send's stdout). On ctx cancellation
	// the caller must make it return (kill zfs send).
	Source     io.Reader
	Recipients []age.Recipient // archive recipients; their identities are not on this host
	Class      objstore.Class
	// ExpectedSize is the estimated plain size (zfs send -nP), used to pick
	// the part size; 0 if unknown.
	ExpectedSize int64
	Metadata     map[string]string
	// Parity, when On, stores the stream as part objects with
	// Reed-Solomon parity objects (see ParitySpec) instead of one object;
	// Parallel parts are stored at once.
	Parity   ParitySpec
	Parallel int
	// Progress hears the plain bytes read so far (for activity heartbeats),
	// at most every ProgressEvery bytes and once at the end.
	Progress func(plainBytes int64)
}

// UploadResult is what Upload stored: everything a manifest Stream needs
// besides the snapshot names.
type UploadResult struct {
	Key          string
	ArchiveID    string // vault archive id
	Class        objstore.Class
	PlainSize    int64
	PlainSHA256  string
	StoredSize   int64
	StoredSHA256 string
	Parts        []objstore.Part
	Parity       *Parity // part-object layout only
}

// ProgressEvery is how often Progress is called, in plain bytes.
const ProgressEvery = 16 << 20

// Stage buffer sizes. Each stage runs in its own goroutine; the rings let
// them overlap. Memory: two rings plus the store's (Parallel+1) part
// buffers, whatever the stream's size.
const (
	readChunk = 1 << 20
	ringSize  = 4 << 20
)

// ErrNoRecipients: encrypting to nobody is refused.
var ErrNoRecipients = errors.New("archive: no age recipients")

// Upload streams Source through age encryption into in.Store under Key:
//
//	Source → [read + SHA-256(plain)] → ring → [age encrypt] → ring →
//	Store.Put: [split + SHA-256(stored)] → parts hashed and written in parallel
//
// A failure anywhere stops every stage and the store aborts the partial
// upload; running Upload again with the same Key replaces the object.
func Upload(ctx context.Context, in UploadInput) (UploadResult, error) {
	if len(in.Recipients) == 0 {
		return UploadResult{}, ErrNoRecipients
	}
	if err := in.Parity.Check(); err != nil {
		return UploadResult{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	plainR, plainW := newRingPipe(ringSize)
	storedR, storedW := newRingPipe(ringSize)
	plainHash := sha256.New()
	var plainSize atomic.Int64
	var wg sync.WaitGroup

	// Stage 1: read the source, hash the plain bytes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, readChunk)
		var next int64 = ProgressEvery
		for {
			n, err := in.Source.Read(buf)
			if n > 0 {
				plainHash.Write(buf[:n])
				total := plainSize.Add(int64(n))
				if _, werr := plainW.Write(buf[:n]); werr != nil {
					return // a later stage failed; its error is reported
				}
				if in.Progress != nil && total >= next {
					in.Progress(total)
					next = total + ProgressEvery
				}
			}
			if err == io.EOF {
				plainW.Close()
				return
			}
			if err != nil {
				plainW.CloseWithError(fmt.Errorf("reading the stream: %w", err))
				return
			}
			if ctx.Err() != nil {
				plainW.CloseWithError(ctx.Err())
				return
			}
		}
	}()

	// Stage 2: encrypt.
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := encrypt(storedW, plainR, in.Recipients)
		plainR.CloseWithError(err) // unblocks stage 1 if we stopped early
		storedW.CloseWithError(err)
	}()

	// Stage 3: the store splits, hashes and uploads.
	var info objstore.ObjectInfo
	var par *Parity
	var err error
	if in.Parity.On() {
		info, par, err = uploadParts(ctx, in, storedR)
	} else {
		info, err = in.Store.Put(ctx, in.Key, storedR, -1, objstore.PutOptions{
			Class: in.Class, Metadata: in.Metadata, ExpectedSize: storedEstimate(in.ExpectedSize),
		})
	}
	if err != nil {
		storedR.CloseWithError(err)
		cancel()
	}
	wg.Wait()
	if err != nil {
		return UploadResult{}, fmt.Errorf("archive %s: %w", in.Key, err)
	}
	if in.Progress != nil {
		in.Progress(plainSize.Load())
	}
	return UploadResult{
		Key: in.Key, ArchiveID: info.ID, Class: info.Class,
		PlainSize: plainSize.Load(), PlainSHA256: hex.EncodeToString(plainHash.Sum(nil)),
		StoredSize: info.Size, StoredSHA256: info.SHA256, Parts: info.Parts, Parity: par,
	}, nil
}

func encrypt(dst io.Writer, src io.Reader, rcpts []age.Recipient) error {
	w, err := age.Encrypt(dst, rcpts...)
	if err != nil {
		return err
	}
	buf := make([]byte, readChunk)
	if _, err := io.CopyBuffer(w, src, buf); err != nil {
		return err
	}
	return w.Close()
}

// storedEstimate is the encrypted size of a plain stream: age adds 16
// bytes per 64 KiB chunk plus a header.
func storedEstimate(plain int64) int64 {
	if plain <= 0 {
		return 0
	}
	return plain + plain/(64<<10)*16 + 1024
}

// NewStream makes the manifest entry for an uploaded stream.
func NewStream(kind archivetypes.Kind, from, to archivetypes.SnapRef, cycle string, raw bool, res UploadResult, uploaded time.Time) Stream {
	return Stream{
		ID: StreamID(kind, from.GUID, to.GUID), Cycle: cycle, Kind: kind, From: from, To: to, Raw: raw,
		Key: res.Key, ArchiveID: res.ArchiveID, Class: res.Class,
		PlainSize: res.PlainSize, StoredSize: res.StoredSize, PlainSHA256: res.PlainSHA256, StoredSHA256: res.StoredSHA256,
		Parts: res.Parts, Parity: res.Parity, Uploaded: uploaded.UTC(),
	}
}
