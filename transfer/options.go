package transfer

import "time"

// Defaults, chosen by measurement on loopback (see BENCHMARKS.md, "Transfer").
const (
	DefaultStreams          = 4
	DefaultChunkSize        = 1 << 20
	DefaultWindow           = 32
	DefaultMaxChunk         = 4 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultAcceptTimeout    = 60 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultKeepalive        = 30 * time.Second // well inside DefaultIdleTimeout
	DefaultAckTimeout       = 2 * time.Minute
	DefaultProgressInterval = time.Second
	// MaxStreams bounds the connections of one transfer (the hello carries
	// the count in 16 bits; far fewer are ever useful).
	MaxStreams = 256
)

// SendOptions tune the sender. Zero values take the defaults.
type SendOptions struct {
	Streams          int            // parallel TCP connections; must equal the receiver's
	ChunkSize        int            // plaintext bytes per frame
	BandwidthLimit   int64          // bytes/s of payload, 0 = unlimited
	Progress         func(Progress) // called every ProgressInterval and once at the end; must not block
	ProgressInterval time.Duration
	DialTimeout      time.Duration // per connection, dial + handshake
	Keepalive        time.Duration // an idle connection gets a keepalive frame this often (must be < the receiver's IdleTimeout)
	AckTimeout       time.Duration // wait for the receiver's final confirmation
}

func (o SendOptions) withDefaults() SendOptions {
	if o.Streams <= 0 {
		o.Streams = DefaultStreams
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize > maxChunkLimit {
		o.ChunkSize = maxChunkLimit
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultHandshakeTimeout
	}
	if o.Keepalive <= 0 {
		o.Keepalive = DefaultKeepalive
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	return o
}

// ReceiveOptions tune the receiver. Zero values take the defaults. Receiver
// memory is bounded by about Window × chunk size (+64 KiB per stream).
type ReceiveOptions struct {
	Streams          int           // connections expected; must equal the sender's
	Window           int           // frames held for reordering (backpressure beyond it)
	MaxChunk         int           // largest chunk size a sender may announce
	HandshakeTimeout time.Duration // per connection attempt
	AcceptTimeout    time.Duration // until all Streams authenticated connections are in
	IdleTimeout      time.Duration // no frame (data or keepalive) on a connection for this long fails the stream
	Progress         func(Progress)
	ProgressInterval time.Duration
}

func (o ReceiveOptions) withDefaults() ReceiveOptions {
	if o.Streams <= 0 {
		o.Streams = DefaultStreams
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxChunk <= 0 {
		o.MaxChunk = DefaultMaxChunk
	}
	if o.MaxChunk > maxChunkLimit {
		o.MaxChunk = maxChunkLimit
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.AcceptTimeout <= 0 {
		o.AcceptTimeout = DefaultAcceptTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	return o
}

// Stats describe a finished (or failed) transfer.
type Stats struct {
	Bytes    int64         // plaintext bytes moved
	Frames   uint64        // data frames
	Duration time.Duration // from first connection to the end
	Rejected int           // connections dropped for failing the handshake (receiver)
}
