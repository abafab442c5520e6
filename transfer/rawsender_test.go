package transfer

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// rawSender is a hand-driven sender for protocol attacks: it completes a
// genuine handshake, then sends whatever frames a test builds.
type rawSender struct {
	conn net.Conn
	keys sessionKeys
}

func dialRaw(t *testing.T, port int, sess Session, streams, index, chunk int) *rawSender {
	t.Helper()
	keys, err := deriveKeys(sess)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	h := hello{cipher: cipherIDs[sess.cipher], streams: uint16(streams), index: uint16(index), chunk: uint32(chunk), session: sess.id}
	if _, err := clientHandshake(conn, keys, h); err != nil {
		t.Fatalf("raw handshake: %v", err)
	}
	conn.SetDeadline(time.Time{})
	return &rawSender{conn: conn, keys: keys}
}

func (s *rawSender) dataFrame(seq uint64, payload []byte) []byte {
	buf := make([]byte, headerSize+len(payload)+s.keys.data.Overhead())
	copy(buf[headerSize:], payload)
	return sealFrame(s.keys.data, buf, frameHeader{seq: seq, typ: frameData}, len(payload))
}

func (s *rawSender) endFrame(index int, totalBytes, frames uint64) []byte {
	buf := make([]byte, headerSize+endPayload+s.keys.data.Overhead())
	copy(buf[headerSize:], endMarker(totalBytes, frames))
	return sealFrame(s.keys.data, buf, frameHeader{seq: frames, typ: frameEnd, conn: uint16(index)}, endPayload)
}

func (s *rawSender) keepaliveFrame(index int, seq uint64) []byte {
	buf := make([]byte, headerSize+s.keys.data.Overhead())
	return sealFrame(s.keys.data, buf, frameHeader{seq: seq, typ: frameKeepalive, conn: uint16(index)}, 0)
}

func (s *rawSender) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := s.conn.Write(f); err != nil {
			t.Logf("raw write: %v (receiver already closed)", err)
			return
		}
	}
}

// awaitReceived reads the receiver's messages on this connection until it
// acknowledges holding the frames of lane index before sequence next.
func (s *rawSender) awaitReceived(t *testing.T, index uint16, next uint64) {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	msg := make([]byte, reverseSize)
	for {
		if _, err := io.ReadFull(s.conn, msg); err != nil {
			t.Fatalf("waiting for the receiver's ack of frame %d: %v", next-1, err)
		}
		if msg[0] == revReceived && beUint64(msg[8:16]) >= next {
			return
		}
	}
}
