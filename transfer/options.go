package transfer

import "time"

// Defaults, chosen by measurement on loopback (see BENCHMARKS.md, "Transfer").
const (
	// DefaultStreams is where a sender with automatic streams starts (the
	// loopback optimum); it adds connections while throughput grows, up to
	// DefaultMaxStreams.
	DefaultStreams    = 4
	DefaultMaxStreams = 16
	DefaultChunkSize  = 1 << 20
	DefaultWindow     = 32
	// DefaultMaxWindow: the receiver's window doubles at a stall up to this
	// many frames (128 MiB at 1 MiB chunks): its memory bound.
	DefaultMaxWindow = 128
	// DefaultSendWindow bounds the frames a sender holds until the receiver
	// has acknowledged them (to send them again after a reconnection): the
	// sender's memory bound, and its flow control.
	DefaultSendWindow       = 160
	DefaultMaxChunk         = 4 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultAcceptTimeout    = 60 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultKeepalive        = 30 * time.Second // well inside DefaultIdleTimeout
	DefaultAckTimeout       = 2 * time.Minute
	DefaultProgressInterval = time.Second
	// A broken connection is re-dialled DefaultReconnectAttempts times,
	// waiting DefaultReconnectBackoff, doubling up to 5 s, between attempts;
	// the receiver waits DefaultReconnectTimeout for it (more than the
	// sender's attempts can take with their dial timeouts).
	DefaultReconnectAttempts = 6
	DefaultReconnectBackoff  = 250 * time.Millisecond
	DefaultReconnectTimeout  = 2 * time.Minute
	// MaxStreams bounds the connections of one transfer (the hello carries
	// the count in 16 bits; far fewer are ever useful).
	MaxStreams = 256
)

// SendOptions tune the sender. Zero values take the defaults.
type SendOptions struct {
	// Streams fixes the number of parallel TCP connections; 0 chooses it:
	// start with DefaultStreams and add one while throughput grows and the
	// lanes wait on the network, not on the reader, up to MaxStreams.
	Streams           int
	MaxStreams        int            // cap for automatic streams (0: DefaultMaxStreams)
	SendWindow        int            // frames held until acknowledged (0: DefaultSendWindow)
	ReconnectAttempts int            // re-dials of a broken connection before the send fails (0: default, <0: none)
	ReconnectBackoff  time.Duration  // first wait between re-dials (doubles, at most 5 s)
	ChunkSize         int            // plaintext bytes per frame
	BandwidthLimit    int64          // bytes/s of payload, 0 = unlimited
	Progress          func(Progress) // called every ProgressInterval and once at the end; must not block
	ProgressInterval  time.Duration
	DialTimeout       time.Duration // per connection, dial + handshake
	Keepalive         time.Duration // an idle connection gets a keepalive frame this often (must be < the receiver's IdleTimeout)
	AckTimeout        time.Duration // wait for the receiver's final confirmation
}

func (o SendOptions) withDefaults() SendOptions {
	if o.MaxStreams <= 0 {
		o.MaxStreams = DefaultMaxStreams
	}
	if o.Streams > 0 {
		o.MaxStreams = o.Streams
	}
	if o.SendWindow <= 0 {
		o.SendWindow = DefaultSendWindow
	}
	if o.ReconnectAttempts == 0 {
		o.ReconnectAttempts = DefaultReconnectAttempts
	}
	if o.ReconnectBackoff <= 0 {
		o.ReconnectBackoff = DefaultReconnectBackoff
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
// memory is bounded by about MaxWindow × chunk size (+64 KiB per connection):
// 128 MiB + 1 MiB for 16 connections with the defaults.
type ReceiveOptions struct {
	Streams          int           // most connections (lanes) a sender may open (0: MaxStreams)
	ReconnectTimeout time.Duration // a lost lane must be re-established within this
	Window           int           // frames held for reordering at first (backpressure beyond it)
	MaxWindow        int           // the window doubles at each stall up to this many frames (0: DefaultMaxWindow, or Window if larger)
	MaxChunk         int           // largest chunk size a sender may announce
	HandshakeTimeout time.Duration // per connection attempt
	AcceptTimeout    time.Duration // until all Streams authenticated connections are in
	IdleTimeout      time.Duration // no frame (data or keepalive) on a connection for this long fails the stream
	Progress         func(Progress)
	ProgressInterval time.Duration
}

func (o ReceiveOptions) withDefaults() ReceiveOptions {
	if o.Streams <= 0 {
		o.Streams = MaxStreams
	}
	if o.ReconnectTimeout <= 0 {
		o.ReconnectTimeout = DefaultReconnectTimeout
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxWindow <= 0 {
		o.MaxWindow = max(DefaultMaxWindow, o.Window)
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
	Streams  int           // lanes (parallel connections) used
	// Reconnects: broken connections re-established (sender: successful
	// re-dials; receiver: lanes that came back).
	Reconnects int
	// WindowStalls (receiver): times a connection had to stop reading
	// because its next frame was a whole window ahead of the next frame to
	// write. SendStalls (sender): times a connection waited for the
	// receiver to acknowledge frames before it could send another.
	WindowStalls int64
	SendStalls   int64
}
