// Package objstore is zcloud's one small storage interface for archives:
// local directory, S3 (with Glacier storage classes) and legacy Glacier
// vaults implement it, decorators add retry and rate limits, and one
// conformance suite (objstoretest) runs against every backend.
//
// Keys are slash-separated paths ("archive/tank/home/c20260101T000000Z/…").
// Streams are written once per key; a retried Put overwrites the same key,
// so retries never leave duplicates.
package objstore

import (
	"context"
	"io"
	"time"
)

// Class is where an object lives and how fast it can be read back.
type Class string

// Storage classes. STANDARD is immediately readable (manifests); the others
// are cold archive classes for streams.
const (
	Standard    Class = "STANDARD"
	GlacierIR   Class = "GLACIER_IR"   // immediately readable, 90-day minimum
	Glacier     Class = "GLACIER"      // Flexible Retrieval: restore first
	DeepArchive Class = "DEEP_ARCHIVE" // restore first, 12–48 h
)

// NeedsRestore reports whether objects of class c must be restored before
// they can be read.
func (c Class) NeedsRestore() bool { return c == Glacier || c == DeepArchive }

// Tier is a retrieval speed for cold objects.
type Tier string

// Retrieval tiers (S3 and Glacier vault spell them the same way).
const (
	Expedited    Tier = "Expedited"
	StandardTier Tier = "Standard"
	Bulk         Tier = "Bulk"
)

// PutOptions says how to store an object.
type PutOptions struct {
	Class Class // "" means Standard
	// Metadata is small user metadata kept with the object (ASCII keys and
	// values; backends may lowercase keys).
	Metadata map[string]string
	// ExpectedSize is a hint for choosing the part size when size is -1 (a
	// stream of unknown length): the part size is picked so the stream fits
	// in the backend's part limit with headroom. 0 means the backend default.
	ExpectedSize int64
}

// Part is one part of an object as it was uploaded: byte range and the
// SHA-256 of those stored bytes. Restores verify a part before using it.
type Part struct {
	Number int    `json:"n"`      // 1-based
	Offset int64  `json:"off"`    // first byte in the object
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // hex
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key    string
	ID     string // backend identifier where it differs from Key (vault archive id)
	Size   int64
	Class  Class
	SHA256 string // hex SHA-256 of the whole object, when the backend knows it
	// StoreSHA256 is the SHA-256 checksum the backend computed and keeps
	// itself, independent of what zcloud recorded (S3's
	// x-amz-checksum-sha256, base64): the whole object's for a single
	// upload; for a multipart upload the checksum of its parts' checksums
	// (AWS appends "-<parts>"). "" where the backend keeps none.
	StoreSHA256 string
	Parts       []Part // part layout; returned by Put (Head returns it where stored)
	Modified    time.Time
	Metadata    map[string]string
	Restore     RestoreStatus // filled by Head where the backend reports it cheaply
}

// RestoreStatus is whether a (cold) object can be read now.
type RestoreStatus struct {
	Ready      bool      // Get will succeed now
	InProgress bool      // a restore was requested and is not finished
	Expiry     time.Time // when a restored copy goes away (zero: never / unknown)
}

// Range selects bytes of an object. The zero Range is the whole object;
// Len 0 means "to the end".
type Range struct{ Off, Len int64 }

// IsWhole reports whether r selects the whole object.
func (r Range) IsWhole() bool { return r.Off == 0 && r.Len == 0 }

// Store is the storage interface every backend implements.
//
// Errors: a missing key is a *NotFoundError (errors.Is(err, ErrNotFound));
// reading a cold object that is not restored is ErrNotRestored; a whole-object
// Get whose bytes do not match the recorded size/SHA-256 fails at EOF with a
// *CorruptError. Everything else may be transient (see Retry).
type Store interface {
	// Put stores r under key. size is the exact length or -1 when unknown.
	// It returns when the object is durable; on failure nothing is left
	// visible under key that was not there before (partial multipart
	// uploads are aborted).
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// Get reads an object or a byte range of it. Whole-object reads verify
	// size and SHA-256 (when known) and report corruption at EOF.
	Get(ctx context.Context, key string, rng Range) (io.ReadCloser, error)
	// Head describes an object without reading it.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// List returns the objects whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes an object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// RequestRestore asks for a cold object to be made readable for days
	// days at tier. It is idempotent: a restore already in progress or done
	// is not an error, and immediately readable objects need nothing.
	RequestRestore(ctx context.Context, key string, tier Tier, days int) error
	// RestoreStatus reports whether Get would succeed now.
	RestoreStatus(ctx context.Context, key string) (RestoreStatus, error)
}
