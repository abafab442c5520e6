package staging

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// Encrypted names (names: encrypt). Each path component is encrypted on
// its own and deterministically, so an incremental maps a rename a -> b to
// staged(a) -> staged(b) with no lookup, and a renamed directory's
// contents keep their staged names. The construction is SIV (a
// deterministic AEAD): iv = HMAC-SHA256(macKey, name)[:16], ciphertext =
// AES-256-CTR(encKey, iv, name); the staged name is iv||ciphertext in
// lowercase base32hex without padding. Decryption recomputes the HMAC, so
// a tampered name is refused. What it shows: equal names (in any
// directory) have equal staged names, and a name's length.
//
// The 32-byte names key comes from the worker's key source (it is not the
// private key: the worker holds the plaintext anyway). The staging copy
// carries it encrypted to the recipients (MetaDir/names.age), so a restore
// needs nothing but the private key.

// NamesKeySize is the names key's length in bytes (64 hex digits in the key
// source).
const NamesKeySize = 32

// MaxEncryptedName is the longest name, in bytes, that encrypts to a file
// name of at most 255 bytes.
const MaxEncryptedName = 143

var nameEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// NameCipher encrypts and decrypts path components with one names key.
type NameCipher struct {
	block cipher.Block
	mac   []byte
	id    string
	key   []byte
}

// ParseNamesKey reads a names key: 64 hex digits (surrounding space ignored).
func ParseNamesKey(b []byte) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != NamesKeySize {
		return nil, fmt.Errorf("staging names key: want %d hex digits (e.g. from `openssl rand -hex 32`), got %d characters", 2*NamesKeySize, len(s))
	}
	return key, nil
}

func derive(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	io.WriteString(m, "zcloud staging names: "+purpose)
	return m.Sum(nil)
}

// NewNameCipher makes a cipher from a 32-byte names key.
func NewNameCipher(key []byte) (*NameCipher, error) {
	if len(key) != NamesKeySize {
		return nil, fmt.Errorf("staging names key: %d bytes, want %d", len(key), NamesKeySize)
	}
	block, err := aes.NewCipher(derive(key, "encryption"))
	if err != nil {
		return nil, err
	}
	return &NameCipher{block: block, mac: derive(key, "authentication"),
		id: hex.EncodeToString(derive(key, "id")[:8]), key: bytes.Clone(key)}, nil
}

// ID names the key without revealing it: the staging copy records it, so
// a run with another key (or kept names) is told instead of mixing names.
func (c *NameCipher) ID() string { return c.id }

func (c *NameCipher) siv(name []byte) []byte {
	m := hmac.New(sha256.New, c.mac)
	m.Write(name)
	return m.Sum(nil)[:aes.BlockSize]
}

// EncryptName encrypts one path component.
func (c *NameCipher) EncryptName(name string) string {
	iv := c.siv([]byte(name))
	out := make([]byte, len(iv)+len(name))
	copy(out, iv)
	cipher.NewCTR(c.block, iv).XORKeyStream(out[len(iv):], []byte(name))
	return strings.ToLower(nameEncoding.EncodeToString(out))
}

// DecryptName decrypts one staged path component.
func (c *NameCipher) DecryptName(staged string) (string, error) {
	raw, err := nameEncoding.DecodeString(strings.ToUpper(staged))
	if err != nil || len(raw) <= aes.BlockSize {
		return "", fmt.Errorf("staging: %q is not an encrypted name", staged)
	}
	iv, ct := raw[:aes.BlockSize], raw[aes.BlockSize:]
	name := make([]byte, len(ct))
	cipher.NewCTR(c.block, iv).XORKeyStream(name, ct)
	if !hmac.Equal(iv, c.siv(name)) {
		return "", fmt.Errorf("staging: the encrypted name %q does not decrypt with this copy's names key", staged)
	}
	return string(name), nil
}

// mapPath applies f to every component of the relative path rel.
func mapPath(rel string, f func(string) (string, error)) (string, error) {
	if rel == "" || rel == "." {
		return rel, nil
	}
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		q, err := f(p)
		if err != nil {
			return "", err
		}
		parts[i] = q
	}
	return strings.Join(parts, "/"), nil
}

// EncryptPath encrypts every component of a relative path.
func (c *NameCipher) EncryptPath(rel string) string {
	p, _ := mapPath(rel, func(s string) (string, error) { return c.EncryptName(s), nil })
	return p
}

// DecryptPath decrypts every component of a staged relative path.
func (c *NameCipher) DecryptPath(rel string) (string, error) {
	return mapPath(rel, c.DecryptName)
}

// stagedRel is rel's path inside the staging copy.
func (s *Stager) stagedRel(rel string) string {
	if s.Names == nil {
		return rel
	}
	return s.Names.EncryptPath(rel)
}

// stagedName is one source name's staged name.
func (s *Stager) stagedName(name string) string {
	if s.Names == nil {
		return name
	}
	return s.Names.EncryptName(name)
}

// displayName is a staged name as a report shows it: decrypted where it
// can be.
func (s *Stager) displayName(staged string) string {
	if s.Names == nil {
		return staged
	}
	if name, err := s.Names.DecryptName(staged); err == nil {
		return name
	}
	return staged
}

// checkName refuses a name too long to encrypt (the entry fails, reported;
// nothing is staged under a truncated name).
func (s *Stager) checkName(rel string) error {
	if s.Names == nil {
		return nil
	}
	if n := len(filepath.Base(rel)); n > MaxEncryptedName {
		return fmt.Errorf("name is %d bytes: with names: encrypt at most %d bytes fit a file name (rename it, or use names: keep)", n, MaxEncryptedName)
	}
	return nil
}

// namesID is what State.Names records for this Stager.
func (s *Stager) namesID() string {
	if s.Names == nil {
		return ""
	}
	return s.Names.ID()
}

// ErrNamesChanged: an incremental would mix name schemes.
var ErrNamesChanged = errors.New("staging: the staging copy's names were staged with another names setting or key")

// saveNamesKey leaves the names key in the staging copy, encrypted to the
// recipients, once per key.
func (s *Stager) saveNamesKey() error {
	if s.Names == nil {
		return nil
	}
	if b, err := os.ReadFile(s.meta("names.id")); err == nil && string(b) == s.Names.ID() {
		return nil
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, s.Recipients...)
	if err != nil {
		return err
	}
	io.WriteString(w, hex.EncodeToString(s.Names.key)+"\n")
	if err := w.Close(); err != nil {
		return err
	}
	if err := writeFile(s.meta("names.age"), buf.Bytes(), !s.NoFsync); err != nil {
		return err
	}
	return writeFile(s.meta("names.id"), []byte(s.Names.ID()), !s.NoFsync)
}

// openNames returns the name cipher of the staging copy dir (nil: names
// kept), decrypting its names key with the private keys ids.
func openNames(dir string, ids []age.Identity) (*NameCipher, error) {
	st, err := ReadState(dir)
	if err != nil || st.Names == "" {
		return nil, err
	}
	f, err := os.Open(filepath.Join(dir, MetaDir, "names.age"))
	if err != nil {
		return nil, fmt.Errorf("staging: the copy has encrypted names but its names key is missing: %w", err)
	}
	defer f.Close()
	return namesOf(st, f, ids)
}

// namesOf decrypts the names key namesAge (MetaDir/names.age) of a copy
// whose state is st.
func namesOf(st State, namesAge io.Reader, ids []age.Identity) (*NameCipher, error) {
	if st.Names == "" {
		return nil, nil
	}
	r, err := age.Decrypt(namesAge, ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, ErrWrongKey
		}
		return nil, fmt.Errorf("staging names key: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<10))
	if err != nil {
		return nil, fmt.Errorf("staging names key: %w", err)
	}
	key, err := ParseNamesKey(b)
	if err != nil {
		return nil, err
	}
	c, err := NewNameCipher(key)
	if err != nil {
		return nil, err
	}
	if c.ID() != st.Names {
		return nil, fmt.Errorf("staging: the copy's names key (id %s) is not the one its state records (%s)", c.ID(), st.Names)
	}
	return c, nil
}
