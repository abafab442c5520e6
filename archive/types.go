package archive

import "zcloud/archive/archivetypes"

// The values that cross the activity boundary live in archivetypes (no
// I/O); these aliases keep this package's API unchanged.
type (
	Kind            = archivetypes.Kind
	SnapRef         = archivetypes.SnapRef
	RestoreEstimate = archivetypes.RestoreEstimate
)

// Stream kinds.
const (
	Full        = archivetypes.Full
	Incremental = archivetypes.Incremental
)
