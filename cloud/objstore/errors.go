package objstore

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is.
var (
	ErrNotFound     = errors.New("object not found")
	ErrNotRestored  = errors.New("object is in a cold storage class and not restored")
	ErrCorrupt      = errors.New("stored object is corrupt")
	ErrTooManyParts = errors.New("stream needs more parts than the backend allows")
)

// NotFoundError is a missing key.
type NotFoundError struct{ Key string }

func (e *NotFoundError) Error() string        { return fmt.Sprintf("%s: %v", e.Key, ErrNotFound) }
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// NotRestoredError is a Get of a cold object without a finished restore.
type NotRestoredError struct {
	Key   string
	Class Class
}

func (e *NotRestoredError) Error() string {
	return fmt.Sprintf("%s (%s): %v", e.Key, e.Class, ErrNotRestored)
}
func (e *NotRestoredError) Is(target error) bool { return target == ErrNotRestored }

// CorruptError names an object (and part, when known) whose bytes do not
// match what was recorded at upload.
type CorruptError struct {
	Key    string
	Part   int    // 1-based part number; 0 for the whole object
	Detail string // what did not match
}

func (e *CorruptError) Error() string {
	if e.Part > 0 {
		return fmt.Sprintf("%s part %d: %v: %s", e.Key, e.Part, ErrCorrupt, e.Detail)
	}
	return fmt.Sprintf("%s: %v: %s", e.Key, ErrCorrupt, e.Detail)
}
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (bad key, bad credentials).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether retrying err is pointless: missing objects,
// corruption, cold objects, cancelled contexts and errors marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p) ||
		errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) ||
		errors.Is(err, ErrNotRestored) || errors.Is(err, ErrTooManyParts) ||
		errors.Is(err, errInvalidKey)
}
