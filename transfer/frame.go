package transfer

import (
	"crypto/cipher"
	"encoding/binary"
)

// Frame types (in the header, authenticated, and part of the nonce).
const (
	frameData      byte = 1
	frameEnd       byte = 2
	frameKeepalive byte = 3 // empty, per connection: the sender is alive while `zfs send` is quiet
	frameAbort     byte = 4 // empty, per lane: the sender gave up, do not wait for it to reconnect
)

const (
	headerSize = 16 // seq(8) type(1) reserved(1) conn(2) sealedLen(4)
	endPayload = 16 // total bytes(8) frame count(8)
	// maxChunkLimit bounds the chunk size a sender may announce, so a receiver
	// never allocates more than this per frame.
	maxChunkLimit = 16 << 20
)

type frameHeader struct {
	seq       uint64
	typ       byte
	conn      uint16 // 0 for data frames (sealed before a connection is chosen)
	sealedLen uint32 // payload + AEAD tag
}

func (h frameHeader) put(b []byte) {
	binary.BigEndian.PutUint64(b[0:8], h.seq)
	b[8] = h.typ
	b[9] = 0
	binary.BigEndian.PutUint16(b[10:12], h.conn)
	binary.BigEndian.PutUint32(b[12:16], h.sealedLen)
}

// parseHeader returns ok=false when reserved bits are set or the type is unknown.
func parseHeader(b []byte) (h frameHeader, ok bool) {
	h.seq = binary.BigEndian.Uint64(b[0:8])
	h.typ = b[8]
	h.conn = binary.BigEndian.Uint16(b[10:12])
	h.sealedLen = binary.BigEndian.Uint32(b[12:16])
	return h, b[9] == 0 && (h.typ >= frameData && h.typ <= frameAbort)
}

// nonce is unique per frame under one data key: the type is part of it, data
// frames have distinct sequence numbers, each lane's END and abort frames have
// a distinct conn field (a resent END is the same frame), and keepalives
// count per lane.
func (h frameHeader) nonce(dst []byte) []byte {
	var n [12]byte
	n[0] = h.typ
	binary.BigEndian.PutUint16(n[2:4], h.conn)
	binary.BigEndian.PutUint64(n[4:12], h.seq)
	return append(dst[:0], n[:]...)
}

// sealFrame seals in place: buf holds headerSize bytes of room, then the
// plaintext (n bytes), then room for the tag. It returns the full frame.
func sealFrame(aead cipher.AEAD, buf []byte, h frameHeader, n int) []byte {
	h.sealedLen = uint32(n + aead.Overhead())
	h.put(buf[:headerSize])
	var nonceBuf [12]byte
	nonce := h.nonce(nonceBuf[:])
	plain := buf[headerSize : headerSize+n]
	sealed := aead.Seal(plain[:0], nonce, plain, buf[:headerSize])
	return buf[:headerSize+len(sealed)]
}

// openFrame authenticates and decrypts sealed in place, returning the plaintext.
func openFrame(aead cipher.AEAD, header []byte, h frameHeader, sealed []byte) ([]byte, error) {
	var nonceBuf [12]byte
	return aead.Open(sealed[:0], h.nonce(nonceBuf[:]), sealed, header)
}

func endMarker(totalBytes, frames uint64) []byte {
	b := make([]byte, endPayload)
	binary.BigEndian.PutUint64(b[0:8], totalBytes)
	binary.BigEndian.PutUint64(b[8:16], frames)
	return b
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
