package archive

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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

// VerifyHead checks, without reading data, that every stream's objects
// exist with the recorded size and SHA-256. Where the store keeps its own
// checksum (S3's SHA-256, computed by S3 from the bytes it received) that
// is what is compared, so an object is checked even without zcloud's own
// metadata (an upload cut short before its tag was written); else the
// SHA-256 zcloud recorded with the object, where there is one. Rotation
// runs it on a new full before deleting the old cycle.
func VerifyHead(ctx context.Context, st objstore.Store, streams []Stream) []Problem {
	var out []Problem
	for _, s := range streams {
		check := func(key string, size int64, sha string, parts []objstore.Part) {
			if err := headMatches(ctx, st, key, size, sha, parts); err != nil {
				out = append(out, Problem{s, err})
			}
		}
		if s.Parity == nil {
			check(s.Key, s.StoredSize, s.StoredSHA256, s.Parts)
			continue
		}
		for _, p := range s.Parts {
			check(PartKey(s.Key, p.Number), p.Size, p.SHA256, nil)
		}
		for _, sh := range s.Parity.Shards {
			g, j := s.Parity.shardPos(sh.Number)
			check(ParityKey(s.Key, g, j), sh.Size, sh.SHA256, nil)
		}
	}
	return out
}

// headMatches checks one object's HEAD against the manifest: size, then
// the store's own checksum (against the whole SHA-256, or the checksum of
// the parts' checksums for a multipart upload), else zcloud's recorded one.
func headMatches(ctx context.Context, st objstore.Store, key string, size int64, sha string, parts []objstore.Part) error {
	info, err := st.Head(ctx, key)
	switch {
	case err != nil:
		return err
	case info.Size != size:
		return &objstore.CorruptError{Key: key, Detail: fmt.Sprintf("size %d, manifest says %d", info.Size, size)}
	case info.StoreSHA256 != "":
		got, _, _ := strings.Cut(info.StoreSHA256, "-") // AWS: "<base64>-<parts>" for multipart
		if got != b64(sha) && (len(parts) < 2 || got != compositeSHA256(parts)) {
			return &objstore.CorruptError{Key: key, Detail: fmt.Sprintf("the store's own SHA-256 checksum %s does not match the manifest's sha256 %s", info.StoreSHA256, sha)}
		}
	case info.SHA256 != "" && info.SHA256 != sha:
		return &objstore.CorruptError{Key: key, Detail: fmt.Sprintf("sha256 %s, manifest says %s", info.SHA256, sha)}
	}
	return nil
}

// compositeSHA256 is S3's checksum of a multipart object: the SHA-256 of
// its parts' SHA-256 digests, concatenated, in base64.
func compositeSHA256(parts []objstore.Part) string {
	h := sha256.New()
	for _, p := range parts {
		b, _ := hex.DecodeString(p.SHA256)
		h.Write(b)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func b64(hexSum string) string {
	b, _ := hex.DecodeString(hexSum)
	return base64.StdEncoding.EncodeToString(b)
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
