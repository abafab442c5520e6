package transfer

import (
	"errors"
	"fmt"
)

// Reasons a transfer fails. Receive and RecvMain errors always also match
// ErrIncomplete, so a caller can tell the output is not a complete stream.
var (
	// ErrIncomplete: the receiver's output must not be used as a complete stream.
	ErrIncomplete = errors.New("transfer: stream incomplete")
	// ErrAuth: a frame failed authentication (tampered, wrong key, forged).
	ErrAuth = errors.New("frame authentication failed")
	// ErrDuplicate: a sequence number was seen twice (replay or duplicate).
	ErrDuplicate = errors.New("duplicate or replayed sequence number")
	// ErrOutOfWindow: frames arrived that can never be reordered within the window.
	ErrOutOfWindow = errors.New("sequence beyond the reorder window")
	// ErrProtocol: malformed frame or inconsistent end marker.
	ErrProtocol = errors.New("protocol violation")
	// ErrConnLost: a connection closed before its end marker (truncation).
	ErrConnLost = errors.New("connection closed before end of stream")
	// ErrTimeout: no authenticated sender, or no progress, within the time limit.
	ErrTimeout = errors.New("timed out")
	// ErrHandshake: the peer did not prove it holds the session key.
	ErrHandshake = errors.New("handshake failed: peer did not prove the session key")
	// ErrNotConfirmed: the sender finished but the receiver did not acknowledge.
	ErrNotConfirmed = errors.New("receiver did not confirm the complete stream")
	// ErrOutput: writing the plaintext to the output failed.
	ErrOutput = errors.New("writing the output failed")
	// ErrCommand: the receive command failed.
	ErrCommand = errors.New("receive command failed")
)

// IncompleteError is returned by Receive and RecvMain. Reason is one of the
// Err* values above (errors.Is works on it); Written is how many plaintext
// bytes had been written to the output before the failure: they must be
// discarded.
type IncompleteError struct {
	Reason  error
	Written int64
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("transfer: stream incomplete after %d bytes: %v", e.Written, e.Reason)
}

func (e *IncompleteError) Unwrap() error { return e.Reason }

func (e *IncompleteError) Is(target error) bool { return target == ErrIncomplete }

// reasonf wraps a sentinel with detail, keeping errors.Is on the sentinel.
func reasonf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
