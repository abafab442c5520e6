package transfer

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Cipher names accepted by NewSession.
const (
	CipherAESGCM   = "aes-256-gcm"
	CipherChaCha20 = "chacha20-poly1305"
)

const (
	sessionIDSize  = 16
	sessionKeySize = 32
	sessionMagic   = "zcloud-transfer-session-v1"
	redacted       = "transfer.Session{REDACTED}"
)

// Session is the secret shared by sender and receiver for one transfer. It is
// handed to the receiver on its stdin only. Its String, GoString, Format and
// MarshalJSON methods redact it so that a stray log line cannot leak the key.
type Session struct {
	id     [sessionIDSize]byte
	key    [sessionKeySize]byte
	cipher string
}

// NewSession returns a fresh random session for the cipher ("" means AES-256-GCM).
func NewSession(cipher string) (Session, error) {
	if cipher == "" {
		cipher = CipherAESGCM
	}
	var s Session
	if _, ok := cipherIDs[cipher]; !ok {
		return s, fmt.Errorf("transfer: unknown cipher %q (want %s or %s)", cipher, CipherAESGCM, CipherChaCha20)
	}
	s.cipher = cipher
	if _, err := rand.Read(s.id[:]); err != nil {
		return s, err
	}
	if _, err := rand.Read(s.key[:]); err != nil {
		return s, err
	}
	return s, nil
}

// Cipher is the session's cipher name (not secret).
func (s Session) Cipher() string { return s.cipher }

// ID returns the session id in hex (not secret; useful to correlate logs).
func (s Session) ID() string { return hex.EncodeToString(s.id[:]) }

// IsZero reports whether s was never initialised.
func (s Session) IsZero() bool { return s.cipher == "" }

func (s Session) String() string               { return redacted }
func (s Session) GoString() string             { return redacted }
func (s Session) Format(f fmt.State, _ rune)   { io.WriteString(f, redacted) }
func (s Session) MarshalJSON() ([]byte, error) { return []byte(`"REDACTED"`), nil }
func (s Session) MarshalText() ([]byte, error) { return []byte("REDACTED"), nil }

// WriteSession writes the session as one text line for the receiver's stdin.
// This is the only way the key leaves the process.
func WriteSession(w io.Writer, s Session) error {
	if s.IsZero() {
		return errors.New("transfer: empty session")
	}
	_, err := fmt.Fprintf(w, "%s %s %s %s\n", sessionMagic, s.cipher,
		hex.EncodeToString(s.id[:]), hex.EncodeToString(s.key[:]))
	return err
}

// maxSessionLine bounds the line ReadSession accepts, so garbage on stdin
// cannot make it buffer without limit.
const maxSessionLine = 256

// ReadSession reads one session line written by WriteSession from r. It does
// not read past the newline when r is a *bufio.Reader; pass one if the caller
// keeps reading r afterwards.
func ReadSession(r *bufio.Reader) (Session, error) {
	var s Session
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return s, fmt.Errorf("transfer: reading session: %w", err)
		}
		if b == '\n' {
			break
		}
		if len(line) >= maxSessionLine {
			return s, errors.New("transfer: reading session: line too long")
		}
		line = append(line, b)
	}
	fields := strings.Fields(string(line))
	if len(fields) != 4 || fields[0] != sessionMagic {
		return s, errors.New("transfer: malformed session line")
	}
	if _, ok := cipherIDs[fields[1]]; !ok {
		return s, fmt.Errorf("transfer: unknown cipher %q in session", fields[1])
	}
	if err := decodeHexInto(s.id[:], fields[2]); err != nil {
		return s, fmt.Errorf("transfer: session id: %w", err)
	}
	if err := decodeHexInto(s.key[:], fields[3]); err != nil {
		return s, errors.New("transfer: session key malformed") // never echo key material
	}
	s.cipher = fields[1]
	return s, nil
}

func decodeHexInto(dst []byte, h string) error {
	if hex.DecodedLen(len(h)) != len(dst) {
		return fmt.Errorf("want %d hex bytes", len(dst))
	}
	_, err := hex.Decode(dst, []byte(h))
	return err
}
