package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/local"
	"zcloud/cloud/objstore/objstoretest"
	"zcloud/internal/testenv"
	"zcloud/zfsname"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newIdentity(t *testing.T) *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// smallParts is a local store with 256 KiB parts, so a few MiB make many parts.
func smallParts(t *testing.T) *local.Store {
	s, err := local.New(t.TempDir(), local.Options{PartSize: 256 << 10, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func upload(t *testing.T, st objstore.Store, key string, data []byte, id *age.X25519Identity) Stream {
	t.Helper()
	var last int64
	res, err := Upload(context.Background(), UploadInput{
		Store: st, Key: key, Source: bytes.NewReader(data), Recipients: []age.Recipient{id.Recipient()},
		Class: objstore.Glacier, Progress: func(n int64) { last = n },
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if res.PlainSize != int64(len(data)) || res.PlainSHA256 != hex.EncodeToString(sum[:]) || last != res.PlainSize {
		t.Fatalf("upload result %+v (progress %d)", res, last)
	}
	if res.StoredSize <= res.PlainSize || len(res.Parts) == 0 {
		t.Fatalf("stored %d bytes in %d parts", res.StoredSize, len(res.Parts))
	}
	return NewStream(archivetypes.Full, archivetypes.SnapRef{}, archivetypes.SnapRef{Name: "s1", GUID: 1}, "c1", false, res, t0)
}

func TestPipelineRoundTrip(t *testing.T) {
	st, id := smallParts(t), newIdentity(t)
	data := objstoretest.Data(1, 3<<20+12345)
	s := upload(t, st, "p/ds/c1/full.zfs.age", data, id)
	if len(s.Parts) < 10 {
		t.Fatalf("%d parts", len(s.Parts))
	}
	// The stored object is ciphertext.
	raw, _ := os.ReadFile(st.Path(s.Key))
	if bytes.Contains(raw, data[1000:1100]) {
		t.Fatal("plain bytes found in the stored object")
	}
	for _, all := range []bool{false, true} {
		var out bytes.Buffer
		res, err := Restore(context.Background(), RestoreInput{Store: st, Stream: s, Identities: []age.Identity{id}, SpoolDir: t.TempDir(), VerifyAll: all}, &out)
		if err != nil || !bytes.Equal(out.Bytes(), data) || res.PlainSHA256 != s.PlainSHA256 {
			t.Fatalf("verifyAll=%v: %v, %d bytes", all, err, out.Len())
		}
	}
}

func TestRestoreWrongKey(t *testing.T) {
	st, id := smallParts(t), newIdentity(t)
	s := upload(t, st, "p/ds/c1/full.zfs.age", objstoretest.Data(2, 100000), id)
	w := OpenOnWrite(func() (io.WriteCloser, error) { t.Fatal("receiver started with the wrong key"); return nil, nil })
	_, err := Restore(context.Background(), RestoreInput{Store: st, Stream: s, Identities: []age.Identity{newIdentity(t)}}, w)
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong identity: %v", err)
	}
	t.Log(err)
}

// flipByte corrupts the local file of key at offset.
func flipByte(t *testing.T, st *local.Store, key string, off int64) {
	f, err := os.OpenFile(st.Path(key), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 1
	f.WriteAt(b, off)
}

func TestRestoreCorruptPart(t *testing.T) {
	st, id := smallParts(t), newIdentity(t)
	data := objstoretest.Data(3, 2<<20)
	s := upload(t, st, "p/ds/c1/full.zfs.age", data, id)
	for _, c := range []struct {
		name      string
		part      int // 1-based
		verifyAll bool
		mayOpen   bool
	}{
		{"first part", 1, false, false},
		{"later part, verify all first", 5, true, false},
		{"later part, per part", 5, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := s.Parts[c.part-1]
			flipByte(t, st, s.Key, p.Offset+p.Size/2)
			defer flipByte(t, st, s.Key, p.Offset+p.Size/2)
			var got bytes.Buffer
			w := OpenOnWrite(func() (io.WriteCloser, error) { return nopCloser{&got}, nil })
			_, err := Restore(context.Background(), RestoreInput{Store: st, Stream: s, Identities: []age.Identity{id}, VerifyAll: c.verifyAll}, w)
			var ce *objstore.CorruptError
			if !errors.As(err, &ce) || ce.Key != s.Key || ce.Part != c.part {
				t.Fatalf("restore of a flipped byte in part %d: %v", c.part, err)
			}
			t.Log(err)
			if w.Opened() && !c.mayOpen {
				t.Fatal("the receiver was started although the damage was known before any byte was verified")
			}
			// Whatever was written is a verified prefix of the plain stream.
			if !bytes.HasPrefix(data, got.Bytes()) || int64(got.Len()) >= int64(len(data)) {
				t.Fatalf("%d bytes reached the receiver, not a strict prefix of the original", got.Len())
			}
		})
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestVerifyHeadAndData(t *testing.T) {
	st, id := smallParts(t), newIdentity(t)
	s := upload(t, st, "p/ds/c1/full.zfs.age", objstoretest.Data(4, 1<<20), id)
	if p := VerifyHead(context.Background(), st, []Stream{s}); p != nil {
		t.Fatal(p)
	}
	if p := VerifyData(context.Background(), st, []Stream{s}, t.TempDir()); p != nil {
		t.Fatal(p)
	}
	flipByte(t, st, s.Key, 100)
	p := VerifyData(context.Background(), st, []Stream{s}, t.TempDir())
	if len(p) != 1 || !errors.Is(p[0].Err, objstore.ErrCorrupt) {
		t.Fatalf("verify of a flipped byte: %v", p)
	}
	t.Log(p[0])
	missing := s
	missing.Key = "p/ds/c1/gone.zfs.age"
	if p := VerifyHead(context.Background(), st, []Stream{missing}); len(p) != 1 || !errors.Is(p[0].Err, objstore.ErrNotFound) {
		t.Fatalf("verify of a missing object: %v", p)
	}
}

func TestManifestRoundTrip(t *testing.T) {
	st := smallParts(t)
	owner, host := newIdentity(t), newIdentity(t)
	rcpts := []age.Recipient{owner.Recipient(), host.Recipient()}
	m := chainManifest(t, []time.Time{t0}, 3)
	if _, err := LoadManifest(context.Background(), st, "arch", m.Dataset, owner); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("load before save: %v", err)
	}
	if err := SaveManifest(context.Background(), st, "arch", m, t0, rcpts...); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(st.Path(ManifestKey("arch", m.Dataset)))
	if bytes.Contains(raw, []byte("incremental")) {
		t.Fatal("manifest stored in the clear")
	}
	// The offline key alone reads it (a restore with nothing from the host).
	got, err := LoadManifest(context.Background(), st, "arch", m.Dataset, owner)
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 1 || len(got.Cycles) != 1 || len(got.Cycles[0].Streams) != 4 || got.Cycles[0].Streams[3].To != m.Cycles[0].Streams[3].To {
		t.Fatalf("loaded %+v", got)
	}
	if info, _ := st.Head(context.Background(), ManifestKey("arch", m.Dataset)); info.Class != objstore.Standard {
		t.Fatalf("manifest class %s", info.Class)
	}
	// A second save keeps the first as manifest.prev.json.
	got.Current().Verified = t0
	if err := SaveManifest(context.Background(), st, "arch", got, t0, rcpts...); err != nil {
		t.Fatal(err)
	}
	// A writer holding a stale copy is refused.
	if err := SaveManifest(context.Background(), st, "arch", m, t0, rcpts...); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale save: %v", err)
	}
	// A damaged manifest.json falls back to the previous one.
	flipByte(t, st, ManifestKey("arch", m.Dataset), 200)
	prev, err := LoadManifest(context.Background(), st, "arch", m.Dataset, host)
	if err != nil || !prev.FromPrevious || prev.Generation != 1 {
		t.Fatalf("fallback: %+v %v", prev, err)
	}
	if _, err := LoadManifest(context.Background(), st, "arch", m.Dataset, newIdentity(t)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
}

// An upload whose source dies midway leaves nothing under its key, and
// running it again (the activity's retry) leaves exactly one object.
func TestInterruptedUploadRetried(t *testing.T) {
	st, id := smallParts(t), newIdentity(t)
	data := objstoretest.Data(5, 2<<20)
	key := "p/ds/c1/full-0000000000000001.zfs.age"
	broken := io.MultiReader(bytes.NewReader(data[:1<<20]), failingReader{})
	_, err := Upload(context.Background(), UploadInput{Store: st, Key: key, Source: broken, Recipients: []age.Recipient{id.Recipient()}, Class: objstore.Glacier})
	if err == nil || !strings.Contains(err.Error(), "zfs send died") {
		t.Fatalf("upload of a dying stream: %v", err)
	}
	if l, _ := st.List(context.Background(), "p/"); len(l) != 0 {
		t.Fatalf("objects left after a failed upload: %+v", l)
	}
	upload(t, st, key, data, id)
	upload(t, st, key, data, id) // a second retry after success: still one object
	if l, _ := st.List(context.Background(), "p/"); len(l) != 1 {
		t.Fatalf("%d objects after retries", len(l))
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("zfs send died (test)") }

func TestOrphans(t *testing.T) {
	st, id := smallParts(t), newIdentity(t)
	m := NewManifest(zfsname.MustDataset("tank/data"))
	cid := CycleID(t0)
	known := upload(t, st, StreamKey("a", m.Dataset, cid, StreamID(archivetypes.Full, 0, 1)), objstoretest.Data(6, 1000), id)
	known.Cycle = cid
	known.ID = StreamID(archivetypes.Full, 0, 1)
	if err := m.AddStream(known); err != nil {
		t.Fatal(err)
	}
	lost := StreamKey("a", m.Dataset, cid, StreamID(archivetypes.Incremental, 1, 2))
	upload(t, st, lost, objstoretest.Data(7, 1000), id)
	upload(t, st, StreamKey("a", zfsname.MustDataset("tank/data/child"), cid, StreamID(archivetypes.Full, 0, 9)), objstoretest.Data(8, 1000), id)
	o, err := Orphans(context.Background(), st, "a", m)
	if err != nil || len(o) != 1 || o[0].Key != lost {
		t.Fatalf("orphans: %+v %v", o, err)
	}
}
