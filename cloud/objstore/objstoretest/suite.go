// Package objstoretest is the one conformance suite every objstore backend
// passes: local directory, S3 (moto) and Glacier vault (moto).
package objstoretest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"zcloud/cloud/objstore"
)

// Harness describes the backend under test.
type Harness struct {
	Store objstore.Store
	// PartSize is the backend's (lowered, for tests) part size, so the
	// suite can build an object of at least 3 parts.
	PartSize int64
	// DataClass is the class for round-trip objects: Standard where that is
	// readable at once, a cold class for vaults (every read is a job).
	DataClass objstore.Class
	// ColdClass is used by the restore test.
	ColdClass objstore.Class
	// Tier for restore requests.
	Tier objstore.Tier
	// HoldRestores, when set, makes the next restores stay in progress for
	// a few polls (moto manual progression), so the suite sees
	// "not ready" before "ready". Backends whose restores take time by
	// themselves (vault jobs) leave it nil; local restores are immediate.
	HoldRestores func(t *testing.T)
	// ImmediateRestore: RestoreStatus is Ready without any request (local).
	ImmediateRestore bool
	// Overwrite replaces the stored bytes of key behind the store's back,
	// keeping what the store recorded (size, checksum). nil skips the
	// corruption tests (vault archives are immutable).
	Overwrite func(t *testing.T, key string, data []byte)
	// RestoreTimeout bounds waiting for a restore (default 1 minute).
	RestoreTimeout time.Duration
}

// Run runs the conformance suite. Keys are under a random prefix so runs
// can share a bucket.
func Run(t *testing.T, h Harness) {
	if h.DataClass == "" {
		h.DataClass = objstore.Standard
	}
	if h.ColdClass == "" {
		h.ColdClass = objstore.Glacier
	}
	if h.Tier == "" {
		h.Tier = objstore.Expedited
	}
	if h.RestoreTimeout == 0 {
		h.RestoreTimeout = time.Minute
	}
	s := &suite{Harness: h, prefix: "conf-" + randHex(4) + "/"}
	t.Run("RoundTrip", s.roundTrip)
	t.Run("MultiPart", s.multiPart)
	t.Run("List", s.list)
	t.Run("Delete", s.delete)
	t.Run("NotFound", s.notFound)
	t.Run("InvalidKey", s.invalidKey)
	t.Run("Restore", s.restore)
	if h.Overwrite != nil {
		t.Run("Corrupt", s.corrupt)
		t.Run("Truncated", s.truncated)
	}
}

type suite struct {
	Harness
	prefix string
}

func randHex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b)
}

// Data returns n deterministic pseudo-random bytes.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// put stores data under key (size known or not) and checks what Put says.
func (s *suite) put(t *testing.T, key string, data []byte, knownSize bool, class objstore.Class) objstore.ObjectInfo {
	t.Helper()
	size := int64(len(data))
	var r io.Reader = bytes.NewReader(data)
	if !knownSize {
		size = -1
		r = struct{ io.Reader }{r} // hide Len/Seek: a real stream
	}
	opts := objstore.PutOptions{Class: class, Metadata: map[string]string{"zcloud-test": "yes"}, ExpectedSize: int64(len(data))}
	info, err := s.Store.Put(s.ctx(t), key, r, size, opts)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	if info.Size != int64(len(data)) || info.SHA256 != sum(data) {
		t.Fatalf("put %s: info size %d sha %s, want %d %s", key, info.Size, info.SHA256, len(data), sum(data))
	}
	checkParts(t, info, data)
	return info
}

func checkParts(t *testing.T, info objstore.ObjectInfo, data []byte) {
	t.Helper()
	var off int64
	for i, p := range info.Parts {
		if p.Number != i+1 || p.Offset != off || p.Offset+p.Size > int64(len(data)) {
			t.Fatalf("part %d: %+v (expected offset %d)", i+1, p, off)
		}
		if got := sum(data[p.Offset : p.Offset+p.Size]); got != p.SHA256 {
			t.Fatalf("part %d sha %s, data has %s", p.Number, p.SHA256, got)
		}
		off += p.Size
	}
	if len(info.Parts) > 0 && off != int64(len(data)) {
		t.Fatalf("parts cover %d of %d bytes", off, len(data))
	}
}

// readable makes keys readable (restore + wait) when they are cold.
func (s *suite) readable(t *testing.T, keys ...string) {
	t.Helper()
	ctx := s.ctx(t)
	for _, k := range keys {
		if err := s.Store.RequestRestore(ctx, k, s.Tier, 1); err != nil {
			t.Fatalf("request restore %s: %v", k, err)
		}
	}
	for _, k := range keys {
		s.waitReady(t, k)
	}
}

func (s *suite) waitReady(t *testing.T, key string) (polls int) {
	t.Helper()
	deadline := time.Now().Add(s.RestoreTimeout)
	for {
		st, err := s.Store.RestoreStatus(s.ctx(t), key)
		if err != nil {
			t.Fatalf("restore status %s: %v", key, err)
		}
		if st.Ready {
			return polls
		}
		polls++
		if time.Now().After(deadline) {
			t.Fatalf("%s not restored after %s (%+v)", key, s.RestoreTimeout, st)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *suite) get(t *testing.T, key string, rng objstore.Range) ([]byte, error) {
	t.Helper()
	rc, err := s.Store.Get(s.ctx(t), key, rng)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func (s *suite) mustGet(t *testing.T, key string, rng objstore.Range, want []byte) {
	t.Helper()
	got, err := s.get(t, key, rng)
	if err != nil {
		t.Fatalf("get %s %+v: %v", key, rng, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s %+v: %d bytes (sha %s), want %d (sha %s)", key, rng, len(got), sum(got), len(want), sum(want))
	}
}

func (s *suite) roundTrip(t *testing.T) {
	cases := []struct {
		name  string
		data  []byte
		known bool
	}{
		{"empty", nil, true},
		{"small-known-size", Data(1, 1000), true},
		{"small-unknown-size", Data(2, 4096+7), false},
	}
	var keys []string
	for _, c := range cases {
		key := s.prefix + "rt/" + c.name
		s.put(t, key, c.data, c.known, s.DataClass)
		keys = append(keys, key)
	}
	s.readable(t, keys...)
	for i, c := range cases {
		info, err := s.Store.Head(s.ctx(t), keys[i])
		if err != nil {
			t.Fatalf("head: %v", err)
		}
		if info.Size != int64(len(c.data)) || info.SHA256 != sum(c.data) || info.Class != s.DataClass {
			t.Fatalf("head %s: size %d sha %s class %s", keys[i], info.Size, info.SHA256, info.Class)
		}
		if info.Metadata["zcloud-test"] != "yes" {
			t.Fatalf("head %s: metadata %v", keys[i], info.Metadata)
		}
		s.mustGet(t, keys[i], objstore.Range{}, c.data)
	}
	// Overwriting a key replaces it: a retried upload leaves one object.
	again := Data(3, 2000)
	s.put(t, keys[1], again, true, s.DataClass)
	s.readable(t, keys[1])
	s.mustGet(t, keys[1], objstore.Range{}, again)
	if l, _ := s.Store.List(s.ctx(t), keys[1]); len(l) != 1 {
		t.Fatalf("after overwrite, list %s has %d objects", keys[1], len(l))
	}
}

func (s *suite) multiPart(t *testing.T) {
	data := Data(4, int(3*s.PartSize+s.PartSize/2+13))
	key := s.prefix + "mp/object"
	info := s.put(t, key, data, false, s.DataClass)
	if len(info.Parts) < 3 {
		t.Fatalf("%d bytes with part size %d made %d parts, want >= 3", len(data), s.PartSize, len(info.Parts))
	}
	s.readable(t, key)
	s.mustGet(t, key, objstore.Range{}, data)
	head, err := s.Store.Head(s.ctx(t), key)
	if err != nil || head.Size != int64(len(data)) || head.SHA256 != sum(data) {
		t.Fatalf("head: %+v %v", head, err)
	}
	// Every part reads back by range, as restores verify part by part.
	for _, p := range info.Parts {
		s.mustGet(t, key, objstore.Range{Off: p.Offset, Len: p.Size}, data[p.Offset:p.Offset+p.Size])
	}
	s.mustGet(t, key, objstore.Range{Off: int64(len(data)) - 10}, data[len(data)-10:])
}

func (s *suite) list(t *testing.T) {
	p := s.prefix + "list/"
	want := map[string]int{p + "a/1": 10, p + "a/2": 20, p + "a/sub/3": 30}
	for k, n := range want {
		s.put(t, k, Data(5, n), true, s.DataClass)
	}
	s.put(t, p+"b/1", Data(6, 5), true, s.DataClass)
	got, err := s.Store.List(s.ctx(t), p+"a/")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("list %sa/: %d objects %+v, want %d", p, len(got), got, len(want))
	}
	for i, o := range got {
		if want[o.Key] != int(o.Size) {
			t.Fatalf("list: %s size %d, want %d", o.Key, o.Size, want[o.Key])
		}
		if i > 0 && got[i-1].Key >= o.Key {
			t.Fatalf("list not sorted: %s before %s", got[i-1].Key, o.Key)
		}
	}
	if none, err := s.Store.List(s.ctx(t), p+"nothing/"); err != nil || len(none) != 0 {
		t.Fatalf("list of empty prefix: %v %v", none, err)
	}
}

func (s *suite) delete(t *testing.T) {
	key := s.prefix + "del/x"
	s.put(t, key, Data(7, 100), true, s.DataClass)
	if err := s.Store.Delete(s.ctx(t), key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.Store.Head(s.ctx(t), key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("head after delete: %v, want NotFound", err)
	}
	if err := s.Store.Delete(s.ctx(t), key); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func (s *suite) notFound(t *testing.T) {
	key := s.prefix + "missing/nothing-here"
	_, err := s.Store.Head(s.ctx(t), key)
	var nf *objstore.NotFoundError
	if !errors.As(err, &nf) || nf.Key != key {
		t.Fatalf("head missing: %v, want *NotFoundError for %s", err, key)
	}
	if _, err := s.get(t, key, objstore.Range{}); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := s.Store.RestoreStatus(s.ctx(t), key); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("restore status missing: %v", err)
	}
	if err := s.Store.RequestRestore(s.ctx(t), key, s.Tier, 1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("request restore missing: %v", err)
	}
	if objstore.IsPermanent(err) == false {
		t.Fatalf("NotFound must be permanent")
	}
}

func (s *suite) invalidKey(t *testing.T) {
	for _, k := range []string{"", "/abs", "a//b", "a/../b", "a/.zcloud-meta/x", "tab\tkey"} {
		if _, err := s.Store.Put(s.ctx(t), k, bytes.NewReader(nil), 0, objstore.PutOptions{}); err == nil {
			t.Fatalf("put %q accepted", k)
		}
	}
}

func (s *suite) restore(t *testing.T) {
	key := s.prefix + "cold/obj"
	data := Data(8, 3000)
	s.put(t, key, data, true, s.ColdClass)
	head, err := s.Store.Head(s.ctx(t), key)
	if err != nil || head.Class != s.ColdClass {
		t.Fatalf("head cold: %+v %v", head, err)
	}
	st, err := s.Store.RestoreStatus(s.ctx(t), key)
	if err != nil {
		t.Fatalf("restore status: %v", err)
	}
	if s.ImmediateRestore {
		if !st.Ready {
			t.Fatalf("immediate backend reports not ready: %+v", st)
		}
	} else {
		if st.Ready {
			t.Fatalf("cold object ready before any restore: %+v", st)
		}
		if _, err := s.get(t, key, objstore.Range{}); !errors.Is(err, objstore.ErrNotRestored) {
			t.Fatalf("get before restore: %v, want ErrNotRestored", err)
		}
	}
	if s.HoldRestores != nil {
		s.HoldRestores(t)
	}
	if err := s.Store.RequestRestore(s.ctx(t), key, s.Tier, 1); err != nil {
		t.Fatalf("request restore: %v", err)
	}
	// Asking again (a retried activity) is fine.
	if err := s.Store.RequestRestore(s.ctx(t), key, s.Tier, 1); err != nil {
		t.Fatalf("second request restore: %v", err)
	}
	polls := s.waitReady(t, key)
	if !s.ImmediateRestore && polls == 0 {
		t.Fatalf("restore was ready at the first poll; the suite wants to see it in progress")
	}
	t.Logf("ready after %d polls", polls)
	s.mustGet(t, key, objstore.Range{}, data)
}

func (s *suite) corrupt(t *testing.T) {
	key := s.prefix + "bad/flipped"
	data := Data(9, 5000)
	s.put(t, key, data, true, s.DataClass)
	bad := bytes.Clone(data)
	bad[1234] ^= 0x40
	s.Overwrite(t, key, bad)
	_, err := s.get(t, key, objstore.Range{})
	var ce *objstore.CorruptError
	if !errors.As(err, &ce) || ce.Key != key {
		t.Fatalf("get of a flipped byte: %v, want *CorruptError naming %s", err, key)
	}
}

func (s *suite) truncated(t *testing.T) {
	key := s.prefix + "bad/short"
	data := Data(10, 5000)
	s.put(t, key, data, true, s.DataClass)
	s.Overwrite(t, key, data[:4000])
	if _, err := s.get(t, key, objstore.Range{}); !errors.Is(err, objstore.ErrCorrupt) {
		t.Fatalf("get of a truncated object: %v, want ErrCorrupt", err)
	}
}
