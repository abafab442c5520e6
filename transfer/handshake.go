package transfer

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

const (
	helloMagic   = "ZCTR"
	helloVersion = 2
	helloSize    = 32 // magic(4) version(1) cipher(1) streams(2) index(2) reserved(2) chunk(4) session id(16)
	proofSize    = 32
	resumeSize   = 8 // receiver -> sender, before its proof: frames of this lane already received
)

// hello is the first message of a connection. It is not secret; the proofs
// that follow cover it, so a tampered hello fails the handshake.
type hello struct {
	cipher  byte
	streams uint16 // the most connections this sender opens (lane indexes are below it)
	index   uint16
	chunk   uint32
	session [sessionIDSize]byte
}

func (h hello) marshal() []byte {
	b := make([]byte, helloSize)
	copy(b, helloMagic)
	b[4] = helloVersion
	b[5] = h.cipher
	binary.BigEndian.PutUint16(b[6:8], h.streams)
	binary.BigEndian.PutUint16(b[8:10], h.index)
	binary.BigEndian.PutUint32(b[12:16], h.chunk)
	copy(b[16:32], h.session[:])
	return b
}

func parseHello(b []byte) (hello, error) {
	var h hello
	if string(b[0:4]) != helloMagic || b[4] != helloVersion || b[10] != 0 || b[11] != 0 {
		return h, errors.New("not a zcloud transfer hello")
	}
	h.cipher = b[5]
	h.streams = binary.BigEndian.Uint16(b[6:8])
	h.index = binary.BigEndian.Uint16(b[8:10])
	h.chunk = binary.BigEndian.Uint32(b[12:16])
	copy(h.session[:], b[16:32])
	return h, nil
}

var (
	labelSender   = []byte("zcloud transfer v2 sender proof")
	labelReceiver = []byte("zcloud transfer v2 receiver proof")
	labelAck      = []byte("zcloud transfer v2 ack")
	labelReverse  = []byte("zcloud transfer v2 receiver message")
)

// clientHandshake proves the session key to the receiver and checks that the
// receiver holds it too. It returns the receiver's resume point for this lane:
// the sequence number after the last data frame it has received on the lane
// (0 on a fresh lane), which the receiver's proof covers. conn's deadline
// bounds it.
func clientHandshake(conn net.Conn, keys sessionKeys, h hello) (resume uint64, err error) {
	hb := h.marshal()
	if _, err := conn.Write(hb); err != nil {
		return 0, fmt.Errorf("%w: sending hello: %v", ErrHandshake, err)
	}
	challenge := make([]byte, proofSize)
	if _, err := io.ReadFull(conn, challenge); err != nil {
		return 0, fmt.Errorf("%w: receiver closed the connection (wrong session id, cipher or stream count?): %v", ErrHandshake, err)
	}
	if _, err := conn.Write(keys.mac(labelSender, hb, challenge)); err != nil {
		return 0, fmt.Errorf("%w: sending proof: %v", ErrHandshake, err)
	}
	got := make([]byte, resumeSize+proofSize)
	if _, err := io.ReadFull(conn, got); err != nil {
		return 0, fmt.Errorf("%w: receiver rejected our proof (wrong session key?): %v", ErrHandshake, err)
	}
	state := got[:resumeSize]
	if !hmac.Equal(got[resumeSize:], keys.mac(labelReceiver, hb, challenge, state)) {
		return 0, fmt.Errorf("%w: receiver's proof is wrong (not our receiver?)", ErrHandshake)
	}
	return binary.BigEndian.Uint64(state), nil
}

// expectation is what a receiver requires of a hello.
type expectation struct {
	session    [sessionIDSize]byte
	cipher     byte
	maxStreams uint16
	maxChunk   uint32
}

// serverHandshake checks the hello and the sender's proof. It returns the
// verified hello and a function that sends the receiver's resume point and
// proof; the caller registers the connection first (learning the resume
// point of its lane), then calls it, so no data is sent before the
// connection is accepted.
func serverHandshake(conn net.Conn, keys sessionKeys, want expectation, deadline time.Time) (hello, func(resume uint64) error, error) {
	conn.SetDeadline(deadline)
	hb := make([]byte, helloSize)
	if _, err := io.ReadFull(conn, hb); err != nil {
		return hello{}, nil, fmt.Errorf("reading hello: %v", err)
	}
	h, err := parseHello(hb)
	if err != nil {
		return h, nil, err
	}
	switch {
	case !bytes.Equal(h.session[:], want.session[:]):
		return h, nil, errors.New("hello for another session")
	case h.cipher != want.cipher:
		return h, nil, errors.New("hello with another cipher")
	case h.streams == 0 || h.streams > want.maxStreams || h.index >= h.streams:
		return h, nil, fmt.Errorf("hello with stream %d/%d, want at most %d streams", h.index, h.streams, want.maxStreams)
	case h.chunk == 0 || h.chunk > want.maxChunk:
		return h, nil, fmt.Errorf("hello with chunk size %d above limit %d", h.chunk, want.maxChunk)
	}
	challenge := make([]byte, proofSize)
	if _, err := rand.Read(challenge); err != nil {
		return h, nil, err
	}
	if _, err := conn.Write(challenge); err != nil {
		return h, nil, fmt.Errorf("sending challenge: %v", err)
	}
	proof := make([]byte, proofSize)
	if _, err := io.ReadFull(conn, proof); err != nil {
		return h, nil, fmt.Errorf("reading proof: %v", err)
	}
	if !hmac.Equal(proof, keys.mac(labelSender, hb, challenge)) {
		return h, nil, errors.New("wrong proof (sender does not hold the session key)")
	}
	confirm := func(resume uint64) error {
		state := binary.BigEndian.AppendUint64(nil, resume)
		_, err := conn.Write(append(state, keys.mac(labelReceiver, hb, challenge, state)...))
		conn.SetDeadline(time.Time{})
		return err
	}
	return h, confirm, nil
}

// ackMAC is what the final ack carries on every connection once the whole
// stream has been verified and written, so the sender's success means delivery.
func ackMAC(keys sessionKeys, session [sessionIDSize]byte, totalBytes, frames uint64) []byte {
	return keys.mac(labelAck, session[:], endMarker(totalBytes, frames))[:reverseMACSize]
}

// Messages from the receiver to the sender after the handshake, each
// reverseSize bytes: type(1) reserved(7) value(8) MAC(16).
const (
	reverseSize    = 32
	reverseMACSize = 16

	// revReceived: value is the sequence after the last data frame received
	// (authenticated and held) on this lane; the sender may drop its copies.
	revReceived byte = 1
	// revFinal: the whole stream was verified and written (value = frames);
	// its MAC is ackMAC, binding the totals.
	revFinal byte = 2
	// revAbort: the receiver gave up; do not reconnect.
	revAbort byte = 3
)

func reverseMsg(keys sessionKeys, session [sessionIDSize]byte, lane uint16, typ byte, value uint64) []byte {
	b := make([]byte, reverseSize)
	b[0] = typ
	binary.BigEndian.PutUint64(b[8:16], value)
	copy(b[16:], reverseMAC(keys, session, lane, b[:16]))
	return b
}

// reverseMAC binds a message to the session and the lane, so one cannot be
// moved to another lane or transfer.
func reverseMAC(keys sessionKeys, session [sessionIDSize]byte, lane uint16, head []byte) []byte {
	return keys.mac(labelReverse, session[:], binary.BigEndian.AppendUint16(nil, lane), head)[:reverseMACSize]
}

func finalMsg(keys sessionKeys, session [sessionIDSize]byte, totalBytes, frames uint64) []byte {
	b := make([]byte, reverseSize)
	b[0] = revFinal
	binary.BigEndian.PutUint64(b[8:16], frames)
	copy(b[16:], ackMAC(keys, session, totalBytes, frames))
	return b
}
