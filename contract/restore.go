package contract

import (
	"time"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/zfsname"
)

// RestorePlanRequest plans restoring Dataset@Snapshot from the archive.
type RestorePlanRequest struct {
	Dataset  zfsname.Dataset `json:"dataset"`
	Snapshot string          `json:"snapshot,omitempty"` // "" = newest archived
	// Identity is the key name of the private key in the worker's key
	// source; the key itself never travels.
	Identity string        `json:"identity"`
	Tier     objstore.Tier `json:"tier"`
	// Days the restored copies stay readable (0: not known to the plan).
	Days int `json:"days,omitempty"`
	// TargetDataset (on Target, "" = this host), when set, is checked
	// before anything is retrieved: a restore never receives over an
	// existing dataset that holds no snapshot of the chain.
	TargetDataset zfsname.Dataset `json:"target_dataset,omitzero"`
	Target        string          `json:"target,omitempty"`
}

// RestorePlan is the chain to receive and what retrieving it costs.
type RestorePlan struct {
	Dataset      string                         `json:"dataset"`
	Snapshot     string                         `json:"snapshot"` // the chain's last snapshot (short name)
	Chain        []StreamInfo                   `json:"chain"`
	PlainBytes   int64                          `json:"plain_bytes"`
	StoredBytes  int64                          `json:"stored_bytes"`
	ParityBytes  int64                          `json:"parity_bytes,omitempty"` // retrieved on top, in parity objects
	NeedsRestore bool                           `json:"needs_restore"`          // cold objects: request retrieval and wait
	Estimates    []archivetypes.RestoreEstimate `json:"estimates"`              // every tier the classes offer
	Chosen       archivetypes.RestoreEstimate   `json:"chosen"`                 // the requested tier
	FromPrevious bool                           `json:"from_previous,omitempty"`
}

// RetrievalRequest names objects to make readable.
type RetrievalRequest struct {
	Keys []string      `json:"keys"`
	Tier objstore.Tier `json:"tier"`
	Days int           `json:"days"`
}

// Retrieval is how many objects are readable now.
type Retrieval struct {
	Ready   int      `json:"ready"`
	Total   int      `json:"total"`
	Pending []string `json:"pending,omitempty"` // up to 5 keys still cold
}

// ReceiveRequest restores one stream of a planned chain.
type ReceiveRequest struct {
	Dataset  zfsname.Dataset `json:"dataset"` // the archived dataset (manifest)
	Cycle    string          `json:"cycle"`
	StreamID string          `json:"stream_id"`
	Identity string          `json:"identity"` // key name, see RestorePlanRequest
	// TargetDataset receives the stream, on Target (a configured target
	// name, restored over SSH) or on the worker's host when Target is "".
	TargetDataset zfsname.Dataset `json:"target_dataset"`
	Target        string          `json:"target,omitempty"`
}

// ReceiveReport says what happened to one stream.
type ReceiveReport struct {
	StreamID string  `json:"stream_id"`
	To       string  `json:"to"`
	Skipped  bool    `json:"skipped,omitempty"` // the target already had it (an earlier attempt)
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
	Attempt  int32   `json:"attempt"`
	// Repaired names the part objects rebuilt from parity (lost or damaged).
	Repaired []string `json:"repaired,omitempty"`
}

// VerifyPlanRequest names a dataset whose archive is checked.
type VerifyPlanRequest struct {
	Dataset zfsname.Dataset `json:"dataset"`
	// Identity reads the manifest; "" uses archive.host_identity (a drill
	// needs no private key of the archive recipients: it checks the
	// stored bytes, which are ciphertext).
	Identity string `json:"identity,omitempty"`
	// Tier and Days of the drill's retrieval, checked against the config
	// before anything is read ("" and 0: not known to the plan).
	Tier objstore.Tier `json:"tier,omitempty"`
	Days int           `json:"days,omitempty"`
}

// VerifyPlan lists every archived stream and the problems HEAD found.
type VerifyPlan struct {
	Dataset      string       `json:"dataset"`
	Streams      []StreamInfo `json:"streams"`
	StoredBytes  int64        `json:"stored_bytes"`
	NeedsRestore bool         `json:"needs_restore"`
	HeadProblems []Finding    `json:"head_problems,omitempty"`
}

// Finding is one stream that failed a check.
type Finding struct {
	StreamID string `json:"stream_id"`
	Cycle    string `json:"cycle"`
	Key      string `json:"key"`
	Kind     string `json:"kind"` // "missing" or "corrupt" or "error"
	Detail   string `json:"detail"`
}

// VerifyStreamRequest re-reads one stream.
type VerifyStreamRequest struct {
	Dataset  zfsname.Dataset `json:"dataset"`
	Cycle    string          `json:"cycle"`
	StreamID string          `json:"stream_id"`
	Identity string          `json:"identity,omitempty"`
}

// VerifyStreamReport is one stream's verdict; a damaged or missing object
// is a finding, not an activity failure, so a drill reports every problem.
type VerifyStreamReport struct {
	StreamID string   `json:"stream_id"`
	OK       bool     `json:"ok"`
	Finding  *Finding `json:"finding,omitempty"`
	Bytes    int64    `json:"bytes"`
}

// DrillScratchPrefix starts the last component of every deep drill's
// scratch dataset: a drill destroys its scratch, so it refuses a name that
// could be real data.
const DrillScratchPrefix = "zcloud-drill"

// DrillReport is what a deep drill did: the chain it received into scratch,
// how many bytes, how long, and the result. It is kept in the store
// (DrillReportKey) and is part of ArchiveVerify's status.
type DrillReport struct {
	Dataset  string    `json:"dataset"`
	Scratch  string    `json:"scratch"`
	Identity string    `json:"identity"` // the private key's name (never the key)
	Chain    []string  `json:"chain"`    // stream id @snapshot, in order
	Bytes    int64     `json:"bytes"`    // plain bytes received
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Passed   bool      `json:"passed"`
	Result   string    `json:"result"` // "passed", or what failed
}

// DrillScratchRequest names a deep drill's scratch dataset on the worker's
// host; Expect lists the snapshot GUIDs the received chain must have.
type DrillScratchRequest struct {
	Scratch zfsname.Dataset `json:"scratch"`
	Expect  []uint64        `json:"expect,omitempty"`
	Report  *DrillReport    `json:"report,omitempty"` // saved to the store when set
}
