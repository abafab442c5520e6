package archive

import (
	"context"
	"fmt"
	"strings"

	"zcloud/cloud/objstore"
)

// Problem is one stream that failed a check.
type Problem struct {
	Stream Stream
	Err    error
}

func (p Problem) String() string { return fmt.Sprintf("%s (%s): %v", p.Stream.Key, p.Stream.ID, p.Err) }

// VerifyHead checks, without reading data, that every stream's object
// exists with the recorded size and (where the store reports it) SHA-256.
// Rotation runs it on a new full before deleting the old cycle.
func VerifyHead(ctx context.Context, st objstore.Store, streams []Stream) []Problem {
	var out []Problem
	for _, s := range streams {
		if s.Parity != nil {
			out = append(out, verifyHeadParts(ctx, st, s)...)
			continue
		}
		info, err := st.Head(ctx, s.Key)
		switch {
		case err != nil:
			out = append(out, Problem{s, err})
		case info.Size != s.StoredSize:
			out = append(out, Problem{s, &objstore.CorruptError{Key: s.Key, Detail: fmt.Sprintf("size %d, manifest says %d", info.Size, s.StoredSize)}})
		case info.SHA256 != "" && info.SHA256 != s.StoredSHA256:
			out = append(out, Problem{s, &objstore.CorruptError{Key: s.Key, Detail: fmt.Sprintf("sha256 %s, manifest says %s", info.SHA256, s.StoredSHA256)}})
		}
	}
	return out
}

// VerifyData re-reads every part of every stream and checks it against the
// manifest (a restore drill; needs no private key, and the objects must be
// readable: restore cold ones first).
func VerifyData(ctx context.Context, st objstore.Store, streams []Stream, spoolDir string) []Problem {
	var out []Problem
	for _, s := range streams {
		parts := s.Parts
		if len(parts) == 0 {
			parts = []objstore.Part{{Number: 1, Size: s.StoredSize, SHA256: s.StoredSHA256}}
		}
		ch := make(chan string, 1)
		done := make(chan error, 1)
		var repaired []Repair
		go func() {
			var err error
			repaired, err = fetchParts(ctx, RestoreInput{Store: st, Stream: s, SpoolDir: spoolDir}, parts, ch)
			done <- err
			close(ch)
		}()
		drain(ch)
		if err := <-done; err != nil {
			out = append(out, Problem{s, err})
			continue
		}
		// Damage parity can still repair is reported all the same: the
		// stream has lost part of its protection.
		for _, r := range repaired {
			out = append(out, Problem{s, &objstore.CorruptError{Key: r.Key, Part: r.Part, Detail: r.Why + "; parity can still rebuild it: archive the dataset again to restore full protection"}})
		}
	}
	return out
}

// Orphans lists objects under the dataset's prefix that no stream of the
// manifest references (an upload whose manifest update never happened, a
// cycle deleted from the manifest but not the store). Manifests are not
// orphans.
func Orphans(ctx context.Context, st objstore.Store, prefix string, m *Manifest) ([]objstore.ObjectInfo, error) {
	known := map[string]bool{ManifestKey(prefix, m.Dataset): true, PrevManifestKey(prefix, m.Dataset): true}
	for _, c := range m.Cycles {
		for _, s := range c.Streams {
			for _, k := range s.ObjectKeys() {
				known[k] = true
			}
		}
	}
	all, err := st.List(ctx, DatasetPrefix(prefix, m.Dataset)+"/")
	if err != nil {
		return nil, err
	}
	var out []objstore.ObjectInfo
	for _, o := range all {
		// Child datasets have their own manifests under deeper prefixes.
		rest := strings.TrimPrefix(o.Key, DatasetPrefix(prefix, m.Dataset)+"/")
		if !known[o.Key] && strings.Count(rest, "/") == 1 && strings.HasSuffix(rest, ".zfs.age") {
			out = append(out, o)
		}
	}
	return out, nil
}

// verifyHeadParts is VerifyHead for a stream stored as part objects: every
// part and parity object exists with the recorded size and SHA-256.
func verifyHeadParts(ctx context.Context, st objstore.Store, s Stream) []Problem {
	var out []Problem
	check := func(key string, want objstore.Part) {
		info, err := st.Head(ctx, key)
		switch {
		case err != nil:
			out = append(out, Problem{s, err})
		case info.Size != want.Size:
			out = append(out, Problem{s, &objstore.CorruptError{Key: key, Detail: fmt.Sprintf("size %d, manifest says %d", info.Size, want.Size)}})
		case info.SHA256 != "" && info.SHA256 != want.SHA256:
			out = append(out, Problem{s, &objstore.CorruptError{Key: key, Detail: fmt.Sprintf("sha256 %s, manifest says %s", info.SHA256, want.SHA256)}})
		}
	}
	for _, p := range s.Parts {
		check(PartKey(s.Key, p.Number), p)
	}
	for _, sh := range s.Parity.Shards {
		g, j := s.Parity.shardPos(sh.Number)
		check(ParityKey(s.Key, g, j), sh)
	}
	return out
}
