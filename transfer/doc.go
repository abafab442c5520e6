// Package transfer moves a byte stream (a `zfs send` stream) from a sender to a
// receiver over N parallel TCP connections as authenticated, encrypted frames,
// reassembled in order on the receiving side. It replaces bbcp+mbuffer+openssl.
//
// Protocol (version 2), per connection (a "lane", numbered by its index):
//
//	sender   -> receiver  hello: magic, version, cipher, most lanes, index, chunk, session id
//	receiver -> sender    challenge: 32 random bytes
//	sender   -> receiver  proof: HMAC(handshake key, "sender", hello, challenge)
//	receiver -> sender    resume point R, proof: HMAC(handshake key, "receiver", hello, challenge, R)
//	sender   -> receiver  data and keepalive frames..., then one END frame (or an abort)
//	receiver -> sender    "received up to s" per data frame, then the final ack (or an abort)
//
// The sender keeps every data frame until the receiver says it holds it (at
// most SendOptions.SendWindow frames: its memory bound and flow control). A
// lane whose connection breaks is re-dialled; the new handshake proves the
// key afresh (a recorded one cannot be replayed: the challenge is new) and
// its resume point R, covered by the receiver's proof, is the sequence after
// the last frame the receiver holds from that lane: the sender sends the
// frames from R on again, so a lane still carries strictly increasing
// sequence numbers across its connections and a replayed frame is refused as
// before. A receiver that gives up says so (an authenticated abort), and so
// does a sender, so neither waits for a reconnection that will not come.
//
// The sender opens lanes as it goes (SendOptions.Streams 0: while
// throughput grows); the stream is complete when every frame up to the END
// frame's count was written and every lane that joined sent its END frame.
//
// A frame is a 16-byte header (sequence, type, connection, length) followed by
// the AEAD-sealed payload. The header is the associated data and the nonce is
// derived from (type, connection, sequence), so a nonce is never reused under
// the session's data key (a frame sent again is the same frame) and any
// change to sequence, type or length is detected. Sequence numbers are global
// across lanes; each lane carries them in increasing order. Every lane ends
// with its own authenticated END frame carrying the stream's total length and
// frame count, so truncation is detected. Keepalive frames are empty, per
// lane, counted per lane (their own nonce domain), and sent only on a lane
// quiet for SendOptions.Keepalive; they keep a receiver's idle timeout about
// a dead sender rather than a quiet `zfs send`. Messages from the receiver are
// 32 bytes with a MAC binding them to the session and the lane.
//
// On Linux the receiver hands the plaintext to the receive command's pipe with
// vmsplice(2) (see spliceWriter) when the command is known to read its stdin.
//
// Keys: the 32-byte session key never travels on the wire; HKDF-SHA256 (salt =
// session id) derives a handshake key and a data key bound to the cipher name.
//
// The package knows nothing of Temporal or ZFS.
package transfer
