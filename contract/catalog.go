package contract

import "time"

// CatalogTier is where one copy of a dataset lives and its newest snapshot
// there. Time is the snapshot's creation time on the source (a received
// snapshot keeps it), so now-Time is how far the copy lags.
type CatalogTier struct {
	Tier     string    `json:"tier"`                // source, replica, archive
	Where    string    `json:"where,omitempty"`     // replica: TARGET:DATASET
	Snapshot string    `json:"snapshot,omitempty"`  // short name, "" when none
	Time     time.Time `json:"time,omitzero"`       // the snapshot's creation
	Count    int       `json:"count,omitempty"`     // snapshots (streams in the archive)
	Error    string    `json:"error,omitempty"`     // why it could not be read
	Skipped  string    `json:"skipped,omitempty"`   // why it was not looked at
	Bytes    int64     `json:"bytes,omitempty"`     // archive: stored bytes
	Uploaded time.Time `json:"uploaded,omitzero"`   // archive: newest upload
	Target   string    `json:"target,omitempty"`    // replica: the target name
	TargetDS string    `json:"target_ds,omitempty"` // replica: the dataset there
}

// CatalogDataset is every copy of one configured dataset.
type CatalogDataset struct {
	Dataset string        `json:"dataset"`
	Tiers   []CatalogTier `json:"tiers"`
}
