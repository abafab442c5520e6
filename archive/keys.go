package archive

import (
	"fmt"
	"strings"
	"time"

	"zcloud/archive/archivetypes"
	"zcloud/zfsname"
)

// CycleID names a cycle by its start time.
func CycleID(start time.Time) string { return start.UTC().Format("c20060102T150405Z") }

// StreamID is the deterministic id of a stream: a full stream by the
// snapshot it sends, an incremental by both ends.
func StreamID(kind archivetypes.Kind, from, to uint64) string {
	if kind == archivetypes.Full {
		return fmt.Sprintf("full-%016x", to)
	}
	return fmt.Sprintf("incr-%016x-%016x", from, to)
}

// DatasetPrefix is where one dataset's objects live.
func DatasetPrefix(prefix string, ds zfsname.Dataset) string {
	return joinKey(prefix, ds.String())
}

// ManifestKey and PrevManifestKey are the manifest objects of a dataset.
func ManifestKey(prefix string, ds zfsname.Dataset) string {
	return joinKey(prefix, ds.String(), "manifest.json")
}

func PrevManifestKey(prefix string, ds zfsname.Dataset) string {
	return joinKey(prefix, ds.String(), "manifest.prev.json")
}

// StreamKey is the object holding one stream.
func StreamKey(prefix string, ds zfsname.Dataset, cycle, streamID string) string {
	return joinKey(prefix, ds.String(), cycle, streamID+".zfs.age")
}

func joinKey(parts ...string) string {
	var nonEmpty []string
	for _, p := range parts {
		if p = strings.Trim(p, "/"); p != "" {
			nonEmpty = append(nonEmpty, p)
		}
	}
	return strings.Join(nonEmpty, "/")
}
