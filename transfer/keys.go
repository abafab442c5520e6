package transfer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// cipherIDs are the on-wire codes of the cipher names (sent in the hello and
// covered by the handshake proof, so a downgrade is detected).
var cipherIDs = map[string]byte{
	CipherAESGCM:   1,
	CipherChaCha20: 2,
}

// sessionKeys are the subkeys derived from a Session; the session key itself is
// used for nothing else.
type sessionKeys struct {
	handshake []byte // HMAC-SHA256 key for handshake proofs and the final ack
	data      cipher.AEAD
}

func deriveKeys(s Session) (sessionKeys, error) {
	var k sessionKeys
	k.handshake = make([]byte, 32)
	if err := hkdfRead(s, "zcloud transfer v1 handshake", k.handshake); err != nil {
		return k, err
	}
	dataKey := make([]byte, 32)
	if err := hkdfRead(s, "zcloud transfer v1 data "+s.cipher, dataKey); err != nil {
		return k, err
	}
	var err error
	switch s.cipher {
	case CipherAESGCM:
		var block cipher.Block
		if block, err = aes.NewCipher(dataKey); err == nil {
			k.data, err = cipher.NewGCM(block)
		}
	case CipherChaCha20:
		k.data, err = chacha20poly1305.New(dataKey)
	default:
		err = fmt.Errorf("transfer: unknown cipher %q", s.cipher)
	}
	return k, err
}

func hkdfRead(s Session, info string, out []byte) error {
	_, err := io.ReadFull(hkdf.New(sha256.New, s.key[:], s.id[:], []byte(info)), out)
	return err
}

// mac is HMAC-SHA256 over the concatenation of parts, under the handshake key.
func (k sessionKeys) mac(parts ...[]byte) []byte {
	h := hmac.New(sha256.New, k.handshake)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}
