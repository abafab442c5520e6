package archive

import (
	"errors"
	"fmt"
	"time"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/zfsname"
)

// ManifestVersion is the schema version this code writes and reads.
const ManifestVersion = 1

// Manifest lists every archived stream of one dataset. The store's copy is
// the truth; any local copy is a cache.
type Manifest struct {
	Version    int             `json:"version"`
	Dataset    zfsname.Dataset `json:"dataset"`
	Generation int64           `json:"generation"` // bumped by every save; guards against lost updates
	Updated    time.Time       `json:"updated"`
	Cycles     []Cycle         `json:"cycles"` // oldest first; the last is the current cycle

	// FromPrevious is set by LoadManifest when manifest.json was unreadable
	// and manifest.prev.json was loaded instead.
	FromPrevious bool `json:"-"`
}

// Cycle is a full stream and the incrementals on top of it.
type Cycle struct {
	ID      string         `json:"id"`
	Started time.Time      `json:"started"`
	Class   objstore.Class `json:"class"`
	// Verified is set once the cycle's full is uploaded, its objects'
	// checksums match (HEAD) and it passed the sanity check; only then may
	// older cycles be deleted.
	Verified time.Time `json:"verified,omitzero"`
	Streams  []Stream  `json:"streams"` // chain order, full first
}

// Stream is one archived zfs send stream.
type Stream struct {
	ID           string               `json:"id"`
	Cycle        string               `json:"cycle"`
	Kind         archivetypes.Kind    `json:"kind"`
	From         archivetypes.SnapRef `json:"from,omitzero"` // incremental only
	To           archivetypes.SnapRef `json:"to"`
	Raw          bool                 `json:"raw,omitempty"` // zfs send -w of an encrypted dataset
	Key          string               `json:"key"`
	ArchiveID    string               `json:"archive_id,omitempty"` // vault archive id
	Class        objstore.Class       `json:"class"`
	PlainSize    int64                `json:"plain_size"`
	StoredSize   int64                `json:"stored_size"`
	PlainSHA256  string               `json:"plain_sha256"`
	StoredSHA256 string               `json:"stored_sha256"`
	Parts        []objstore.Part      `json:"parts"` // stored-byte ranges with SHA-256, checked before use
	// Parity is set for a stream stored as part objects (PartKey; no
	// object at Key) with optional Reed-Solomon parity objects.
	Parity   *Parity   `json:"parity,omitempty"`
	Uploaded time.Time `json:"uploaded"`
}

// NewManifest starts an empty manifest for ds.
func NewManifest(ds zfsname.Dataset) *Manifest {
	return &Manifest{Version: ManifestVersion, Dataset: ds}
}

// Current is the newest cycle, or nil.
func (m *Manifest) Current() *Cycle {
	if len(m.Cycles) == 0 {
		return nil
	}
	return &m.Cycles[len(m.Cycles)-1]
}

// Cycle finds a cycle by id.
func (m *Manifest) Cycle(id string) *Cycle {
	for i := range m.Cycles {
		if m.Cycles[i].ID == id {
			return &m.Cycles[i]
		}
	}
	return nil
}

// Latest is the newest archived stream (the chain's tip), if any.
func (m *Manifest) Latest() (Stream, bool) {
	for i := len(m.Cycles) - 1; i >= 0; i-- {
		if s := m.Cycles[i].Streams; len(s) > 0 {
			return s[len(s)-1], true
		}
	}
	return Stream{}, false
}

// Full is the cycle's full stream.
func (c *Cycle) Full() (Stream, bool) {
	if len(c.Streams) == 0 || c.Streams[0].Kind != archivetypes.Full {
		return Stream{}, false
	}
	return c.Streams[0], true
}

// Errors of the chain model.
var (
	ErrBrokenChain = errors.New("broken archive chain")
	ErrNoSnapshot  = errors.New("snapshot not archived")
)

// AddStream records an uploaded stream. A full starts a new cycle (its
// Cycle id must be new); an incremental must continue the current cycle's
// tip (From.GUID == tip's To.GUID). Adding a stream already recorded (same
// id in the same cycle, a retried activity) replaces it.
func (m *Manifest) AddStream(s Stream) error {
	if s.Kind != archivetypes.Full && s.Kind != archivetypes.Incremental {
		return fmt.Errorf("stream %s: unknown kind %q", s.ID, s.Kind)
	}
	if c := m.Cycle(s.Cycle); c != nil {
		for i := range c.Streams {
			if c.Streams[i].ID == s.ID {
				c.Streams[i] = s
				return nil
			}
		}
	}
	if s.Kind == archivetypes.Full {
		if m.Cycle(s.Cycle) != nil {
			return fmt.Errorf("full stream %s: cycle %s already has a full", s.ID, s.Cycle)
		}
		m.Cycles = append(m.Cycles, Cycle{ID: s.Cycle, Started: s.Uploaded, Class: s.Class, Streams: []Stream{s}})
		return nil
	}
	c := m.Current()
	if c == nil || c.ID != s.Cycle {
		return fmt.Errorf("%w: incremental %s is for cycle %s, which is not the current cycle", ErrBrokenChain, s.ID, s.Cycle)
	}
	tip := c.Streams[len(c.Streams)-1]
	if s.From.GUID != tip.To.GUID {
		return fmt.Errorf("%w: incremental %s starts at @%s (guid %d) but the chain ends at @%s (guid %d)",
			ErrBrokenChain, s.ID, s.From.Name, s.From.GUID, tip.To.Name, tip.To.GUID)
	}
	c.Streams = append(c.Streams, s)
	return nil
}

// RemoveCycle drops a cycle from the manifest (after its objects are deleted).
func (m *Manifest) RemoveCycle(id string) {
	for i := range m.Cycles {
		if m.Cycles[i].ID == id {
			m.Cycles = append(m.Cycles[:i], m.Cycles[i+1:]...)
			return
		}
	}
}
