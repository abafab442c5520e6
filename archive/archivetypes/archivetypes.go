// Package archivetypes holds the archive values that cross the activity
// boundary (stream kinds, snapshot references, restore estimates) without
// package archive's I/O, so workflow code can name them.
package archivetypes

import (
	"fmt"
	"time"

	"zcloud/cloud/objstore"
)

// Kind is a stream's kind.
type Kind string

const (
	Full        Kind = "full"
	Incremental Kind = "incremental"
)

// SnapRef names a snapshot by short name (after '@') and GUID; the GUID is
// what links incrementals, names can be reused.
type SnapRef struct {
	Name string `json:"name"`
	GUID uint64 `json:"guid,string"`
}

// RestoreEstimate is what restoring a chain at one tier costs.
type RestoreEstimate struct {
	Class            objstore.Class
	Tier             objstore.Tier
	Objects          int
	StoredBytes      int64
	ParityBytes      int64         // of StoredBytes, parity objects
	MinWait, MaxWait time.Duration // until every object is readable
	RetrievalUSD     float64       // retrieval requests + data retrieval
	EgressUSD        float64       // only if downloaded outside AWS
}

func (e RestoreEstimate) String() string {
	wait := "immediate"
	switch {
	case e.MaxWait > 0 && e.MinWait > 0:
		wait = fmt.Sprintf("%s–%s", e.MinWait, e.MaxWait)
	case e.MaxWait > 0:
		wait = "up to " + e.MaxWait.String()
	}
	parity := ""
	if e.ParityBytes > 0 {
		parity = fmt.Sprintf(" (%.1f GB parity)", float64(e.ParityBytes)/(1<<30))
	}
	return fmt.Sprintf("%-12s %-9s %3d objects %8.1f GB%s  wait %-12s retrieval $%.2f (+$%.2f egress outside AWS)",
		e.Class, e.Tier, e.Objects, float64(e.StoredBytes)/(1<<30), parity, wait, e.RetrievalUSD, e.EgressUSD)
}
