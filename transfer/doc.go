// Package transfer moves a byte stream (a `zfs send` stream) from a sender to a
// receiver over N parallel TCP connections as authenticated, encrypted frames,
// reassembled in order on the receiving side. It replaces bbcp+mbuffer+openssl.
//
// Protocol (version 1), per connection:
//
//	sender   -> receiver  hello: magic, version, cipher, streams, index, chunk, session id
//	receiver -> sender    challenge: 32 random bytes
//	sender   -> receiver  proof: HMAC(handshake key, "sender", hello, challenge)
//	receiver -> sender    proof: HMAC(handshake key, "receiver", hello, challenge)
//	sender   -> receiver  data and keepalive frames..., then one END frame
//	receiver -> sender    ack: HMAC(handshake key, "ack", session id, totals)
//
// The ack is the only thing a receiver sends after the handshake, so a sender
// that sees its connection end before its END frame knows the receiver gave up.
//
// A frame is a 16-byte header (sequence, type, connection, length) followed by
// the AEAD-sealed payload. The header is the associated data and the nonce is
// derived from (type, connection, sequence), so a nonce is never reused under
// the session's data key and any change to sequence, type or length is detected.
// Sequence numbers are global across connections; each connection carries them
// in increasing order. Every connection ends with its own authenticated END
// frame carrying the stream's total length and frame count, so truncation of any
// connection is detected. Keepalive frames are empty, per connection, counted
// per connection (their own nonce domain), and sent only on a connection quiet
// for SendOptions.Keepalive; they keep a receiver's idle timeout about a dead
// sender rather than a quiet `zfs send`.
//
// On Linux the receiver hands the plaintext to the receive command's pipe with
// vmsplice(2) (see spliceWriter) when the command is known to read its stdin.
//
// Keys: the 32-byte session key never travels on the wire; HKDF-SHA256 (salt =
// session id) derives a handshake key and a data key bound to the cipher name.
//
// The package knows nothing of Temporal or ZFS.
package transfer
