package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/reedsolomon"

	"zcloud/cloud/objstore"
)

// ParitySpec asks for a stream stored as separate part objects with
// Reed-Solomon parity: every Data consecutive parts form a group, and each
// group gets Parity parity objects. A restore rebuilds up to Parity lost or
// damaged objects per group. Data 0 is the default single-object layout;
// Parity 0 keeps part objects without parity.
type ParitySpec struct {
	Data   int
	Parity int
	// PartSize is each part object's size (the shard size); 0: 16 MiB.
	PartSize int64
}

// On reports whether the spec asks for the part-object layout.
func (p ParitySpec) On() bool { return p.Data > 0 }

func (p ParitySpec) String() string { return fmt.Sprintf("%d+%d", p.Data, p.Parity) }

// Check validates a spec (the Reed-Solomon code has at most 256 shards).
func (p ParitySpec) Check() error {
	switch {
	case p.Data == 0 && p.Parity == 0:
		return nil
	case p.Data < 1 || p.Parity < 0 || p.Parity > p.Data || p.Data+p.Parity > 256:
		return fmt.Errorf("parity %s: want 1 <= data <= 256-parity and 0 <= parity <= data", p)
	case p.PartSize < 0:
		return fmt.Errorf("parity part size %d", p.PartSize)
	}
	return nil
}

// DefaultParityPartSize is a part object's size when the spec gives none.
const DefaultParityPartSize = 16 << 20

// Parity is how a stream stored as part objects is protected (the
// manifest's record of a ParitySpec upload). The stream's Parts are its
// data objects, at PartKey; Shards are the parity objects, at ParityKey.
type Parity struct {
	Data      int   `json:"data"`       // data parts per group (k)
	Parity    int   `json:"parity"`     // parity objects per group (m)
	ShardSize int64 `json:"shard_size"` // every shard's size: a shorter last part is zero-padded to it
	// Shards lists the parity objects group by group: shard j (1-based) of
	// group g (1-based) has Number (g-1)*Parity + j. Offset is unused.
	Shards []objstore.Part `json:"shards,omitempty"`
}

// Groups is the number of parity groups over n data parts.
func (p *Parity) Groups(n int) int { return (n + p.Data - 1) / p.Data }

// Bytes is what the parity objects store.
func (p *Parity) Bytes() int64 { return int64(len(p.Shards)) * p.ShardSize }

// PartKey is the object holding part n (1-based) of a stream stored as
// part objects. The names sort in order, so `cat` of them in key order is
// the stored stream.
func PartKey(streamKey string, n int) string {
	return strings.TrimSuffix(streamKey, ".zfs.age") + fmt.Sprintf(".part%06d.zfs.age", n)
}

// ParityKey is parity object j of group g (both 1-based).
func ParityKey(streamKey string, g, j int) string {
	return strings.TrimSuffix(streamKey, ".zfs.age") + fmt.Sprintf(".group%06d.parity%03d.rs", g, j)
}

// ObjectKeys is every object that holds a stream: its one object, or its
// part and parity objects.
func (s Stream) ObjectKeys() []string {
	if s.Parity == nil {
		return []string{s.Key}
	}
	keys := make([]string, 0, len(s.Parts)+len(s.Parity.Shards))
	for _, p := range s.Parts {
		keys = append(keys, PartKey(s.Key, p.Number))
	}
	for _, sh := range s.Parity.Shards {
		g, j := s.Parity.shardPos(sh.Number)
		keys = append(keys, ParityKey(s.Key, g, j))
	}
	return keys
}

// ParityBytes is what the stream's parity objects store (0 without).
func (s Stream) ParityBytes() int64 {
	if s.Parity == nil {
		return 0
	}
	return s.Parity.Bytes()
}

// shardPos is the (group, index), both 1-based, of parity shard number n.
func (p *Parity) shardPos(n int) (g, j int) { return (n-1)/p.Parity + 1, (n-1)%p.Parity + 1 }

// uploadParts is Upload's third stage for the part-object layout: it
// splits the stored stream into parts, stores each as its own object and,
// as the parts go by, accumulates each group's parity (EncodeIdx: no group
// is ever held in memory whole), storing a group's parity objects once its
// last part is in. Memory: the splitter's (Parallel+1) part buffers plus
// Parity shards for each group with a part in flight.
func uploadParts(ctx context.Context, in UploadInput, r io.Reader) (objstore.ObjectInfo, *Parity, error) {
	spec := in.Parity
	size := spec.PartSize
	if size <= 0 {
		size = DefaultParityPartSize
	}
	par := &Parity{Data: spec.Data, Parity: spec.Parity, ShardSize: size}
	var enc reedsolomon.Encoder
	if spec.Parity > 0 {
		var err error
		if enc, err = reedsolomon.New(spec.Data, spec.Parity); err != nil {
			return objstore.ObjectInfo{}, nil, err
		}
	}
	opts := objstore.PutOptions{Class: in.Class, Metadata: in.Metadata}
	type group struct {
		mu     sync.Mutex
		parity [][]byte
		seen   int
	}
	var (
		mu     sync.Mutex
		groups = map[int]*group{}
		shards []objstore.Part
	)
	putParity := func(ctx context.Context, g int, grp *group) error {
		for j, b := range grp.parity {
			sum := sha256.Sum256(b)
			sh := objstore.Part{Number: g*spec.Parity + j + 1, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
			if _, err := in.Store.Put(ctx, ParityKey(in.Key, g+1, j+1), bytes.NewReader(b), sh.Size, opts); err != nil {
				return fmt.Errorf("parity %d of group %d: %w", j+1, g+1, err)
			}
			mu.Lock()
			shards = append(shards, sh)
			mu.Unlock()
		}
		return nil
	}
	var info objstore.ObjectInfo
	sp := objstore.Splitter{
		PartSize: size,
		Parallel: max(in.Parallel, 1),
		Upload: func(ctx context.Context, p objstore.Part, data []byte) error {
			if _, err := in.Store.Put(ctx, PartKey(in.Key, p.Number), bytes.NewReader(data), p.Size, opts); err != nil {
				return err
			}
			if enc == nil {
				return nil
			}
			g, idx := (p.Number-1)/spec.Data, (p.Number-1)%spec.Data
			mu.Lock()
			grp := groups[g]
			if grp == nil {
				grp = &group{parity: make([][]byte, spec.Parity)}
				for j := range grp.parity {
					grp.parity[j] = make([]byte, size)
				}
				groups[g] = grp
			}
			mu.Unlock()
			shard := data
			if int64(len(data)) < size { // the last part: zero-padded
				shard = make([]byte, size)
				copy(shard, data)
			}
			grp.mu.Lock()
			err := enc.EncodeIdx(shard, idx, grp.parity)
			grp.seen++
			full := grp.seen == spec.Data
			grp.mu.Unlock()
			if err != nil {
				return fmt.Errorf("parity of part %d: %w", p.Number, err)
			}
			if !full {
				return nil
			}
			mu.Lock()
			delete(groups, g)
			mu.Unlock()
			return putParity(ctx, g, grp)
		},
	}
	res, err := sp.Run(ctx, r)
	if err != nil {
		return info, nil, err
	}
	// The last group may be short: its missing parts count as zeros, for
	// the encoder now and for a repair later.
	for g, grp := range groups {
		if err := putParity(ctx, g, grp); err != nil {
			return info, nil, err
		}
	}
	slices.SortFunc(shards, func(a, b objstore.Part) int { return a.Number - b.Number })
	par.Shards = shards
	info = objstore.ObjectInfo{Key: in.Key, Size: res.Size, SHA256: res.SHA256, Parts: res.Parts, Class: in.Class}
	return info, par, nil
}

// Repair is one part object that a restore rebuilt from parity.
type Repair struct {
	Part int    `json:"part"`
	Key  string `json:"key"`
	Why  string `json:"why"` // what was wrong with the stored object
}

func (r Repair) String() string {
	return fmt.Sprintf("%s (part %d): %s, rebuilt from parity", r.Key, r.Part, r.Why)
}

// repairer rebuilds the parts of one group of a parity stream from the
// group's intact data and parity objects. It holds the rebuilt group
// (Data+Parity shards) until the restore moves past it.
type repairer struct {
	in       RestoreInput
	enc      reedsolomon.Encoder // nil without parity
	group    int                 // 0-based group held in shards; -1: none
	shards   [][]byte
	repaired []Repair
}

func newRepairer(in RestoreInput) (*repairer, error) {
	r := &repairer{in: in, group: -1}
	if p := in.Stream.Parity; p.Parity > 0 {
		var err error
		if r.enc, err = reedsolomon.New(p.Data, p.Parity); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// held returns part p's verified bytes if its group was rebuilt.
func (r *repairer) held(p objstore.Part) ([]byte, bool) {
	k := r.in.Stream.Parity.Data
	if r.group != (p.Number-1)/k {
		return nil, false
	}
	return r.shards[(p.Number-1)%k][:p.Size], true
}

// damage says why one object of a group cannot be used.
type damage struct {
	key string
	why string
}

// rebuild reads the whole group of part p (which failed with cause),
// keeps what verifies, and rebuilds the rest from parity. More damage
// than Parity objects in the group is a *objstore.CorruptError naming
// every damaged object. A transient error is returned as is (the activity
// retries).
func (r *repairer) rebuild(ctx context.Context, p objstore.Part, cause error) error {
	s, par := r.in.Stream, r.in.Stream.Parity
	k, m := par.Data, par.Parity
	g := (p.Number - 1) / k
	r.group, r.shards = -1, nil
	shards := make([][]byte, k+m)
	var bad []damage
	badIdx := map[int]string{}
	for i := 0; i < k; i++ {
		n := g*k + i + 1
		if n > len(s.Parts) { // past the stream's end: zeros, as encoded
			shards[i] = make([]byte, par.ShardSize)
			continue
		}
		part := s.Parts[n-1]
		var b []byte
		var err error
		if n == p.Number {
			err = cause
		} else {
			b, err = r.readVerified(ctx, PartKey(s.Key, n), part)
		}
		if err != nil {
			if !isDamage(err) {
				return err
			}
			bad = append(bad, damage{PartKey(s.Key, n), damageWhy(err)})
			badIdx[i] = damageWhy(err)
			continue
		}
		shards[i] = pad(b, par.ShardSize)
	}
	for j := 0; j < m; j++ {
		num := g*m + j + 1
		key := ParityKey(s.Key, g+1, j+1)
		if num > len(par.Shards) {
			bad = append(bad, damage{key, "not in the manifest"})
			continue
		}
		b, err := r.readVerified(ctx, key, par.Shards[num-1])
		if err != nil {
			if !isDamage(err) {
				return err
			}
			bad = append(bad, damage{key, damageWhy(err)})
			continue
		}
		shards[k+j] = b
	}
	if len(badIdx) > 0 && (r.enc == nil || len(bad) > m) {
		var list []string
		for _, d := range bad {
			list = append(list, d.key+": "+d.why)
		}
		what := "no parity"
		if m > 0 {
			what = fmt.Sprintf("parity %d+%d rebuilds at most %d", k, m, m)
		}
		return &objstore.CorruptError{Key: s.Key, Detail: fmt.Sprintf("group %d: %d of its objects lost or damaged, %s: %s",
			g+1, len(bad), what, strings.Join(list, "; "))}
	}
	if len(badIdx) > 0 {
		if err := r.enc.ReconstructData(shards); err != nil {
			return fmt.Errorf("%s: rebuilding group %d from parity: %w", s.Key, g+1, err)
		}
	}
	for i, why := range badIdx {
		n := g*k + i + 1
		part := s.Parts[n-1]
		sum := sha256.Sum256(shards[i][:part.Size])
		if got := hex.EncodeToString(sum[:]); got != part.SHA256 {
			return &objstore.CorruptError{Key: PartKey(s.Key, n), Detail: fmt.Sprintf("rebuilt from parity but sha256 %s, manifest says %s", got, part.SHA256)}
		}
		r.repaired = append(r.repaired, Repair{Part: n, Key: PartKey(s.Key, n), Why: why})
	}
	slices.SortFunc(r.repaired, func(a, b Repair) int { return a.Part - b.Part })
	r.group, r.shards = g, shards
	return nil
}

// readVerified reads one whole object into memory and checks it against
// the manifest's size and SHA-256.
func (r *repairer) readVerified(ctx context.Context, key string, want objstore.Part) ([]byte, error) {
	rc, err := r.in.Store.Get(ctx, key, objstore.Range{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, want.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != want.Size {
		return nil, &objstore.CorruptError{Key: key, Detail: fmt.Sprintf("%d bytes, manifest says %d", len(b), want.Size)}
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want.SHA256 {
		return nil, &objstore.CorruptError{Key: key, Detail: fmt.Sprintf("sha256 %s, manifest says %s", got, want.SHA256)}
	}
	return b, nil
}

// isDamage: the object is gone or its bytes are wrong (parity can help);
// anything else (network, throttling, not restored) is not damage.
func isDamage(err error) bool {
	var ce *objstore.CorruptError
	return errors.Is(err, objstore.ErrNotFound) || errors.As(err, &ce)
}

func damageWhy(err error) string {
	var ce *objstore.CorruptError
	if errors.As(err, &ce) {
		return "damaged (" + ce.Detail + ")"
	}
	return "missing"
}

func pad(b []byte, size int64) []byte {
	if int64(len(b)) == size {
		return b
	}
	out := make([]byte, size)
	copy(out, b)
	return out
}

// StreamObjects is every object holding the stream at streamKey, found in
// the store rather than the manifest (retrieval activities get stream keys
// only, which keeps workflow payloads small): the one object, or else the
// part and parity objects stored beside it. Lost objects are simply not
// listed: a restore rebuilds them from parity or names them.
func StreamObjects(ctx context.Context, st objstore.Store, streamKey string) ([]string, error) {
	_, err := st.Head(ctx, streamKey)
	if err == nil || !errors.Is(err, objstore.ErrNotFound) {
		return []string{streamKey}, err
	}
	base := strings.TrimSuffix(streamKey, ".zfs.age")
	var keys []string
	for _, prefix := range []string{base + ".part", base + ".group"} {
		objs, lerr := st.List(ctx, prefix)
		if lerr != nil {
			return nil, lerr
		}
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
	}
	if len(keys) == 0 {
		return nil, err
	}
	return keys, nil
}
