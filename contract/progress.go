package contract

// Progress is what long activities heartbeat: the Web UI shows it under
// pending activities and `zcloud status` prints it.
type Progress struct {
	Phase       string  `json:"phase"`
	Bytes       int64   `json:"bytes"`
	Total       int64   `json:"total,omitempty"` // 0: unknown
	BytesPerSec float64 `json:"bytes_per_sec"`
	Detail      string  `json:"detail,omitempty"`
	// Live is where the worker serves this activity's progress as it
	// happens (package progress); the CLI reads it there.
	Live string `json:"live,omitempty"`
}
