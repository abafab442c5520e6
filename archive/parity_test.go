package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"filippo.io/age"

	"zcloud/archive/archivetypes"
	"zcloud/cloud/objstore"
	"zcloud/cloud/objstore/objstoretest"
)

// uploadParity archives data as part objects of 64 KiB with parity spec.
func uploadParity(t *testing.T, spec ParitySpec, data []byte, id *age.X25519Identity) (Stream, objstore.Store) {
	t.Helper()
	st := smallParts(t)
	spec.PartSize = 64 << 10
	res, err := Upload(context.Background(), UploadInput{
		Store: st, Key: "p/ds/c1/full.zfs.age", Source: bytes.NewReader(data), Recipients: []age.Recipient{id.Recipient()},
		Class: objstore.Glacier, Parity: spec, Parallel: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return NewStream(archivetypes.Full, archivetypes.SnapRef{}, archivetypes.SnapRef{Name: "s1", GUID: 1}, "c1", false, res, t0), st
}

func TestParityRepairsALostAndADamagedPart(t *testing.T) {
	id := newIdentity(t)
	// 23 parts of 64 KiB, the last short: groups of 10, 10 and 3.
	data := objstoretest.Data(7, 23*64<<10-5000)
	s, st := uploadParity(t, ParitySpec{Data: 10, Parity: 2}, data, id)
	ls := st.(interface{ Path(string) string })
	if len(s.Parts) != 23 || s.Parity == nil || len(s.Parity.Shards) != 6 {
		t.Fatalf("%d parts, parity %+v", len(s.Parts), s.Parity)
	}
	if _, err := os.Stat(ls.Path(s.Key)); !os.IsNotExist(err) {
		t.Fatalf("a parity stream has no single object: %v", err)
	}
	if got := len(s.ObjectKeys()); got != 29 {
		t.Fatalf("%d object keys", got)
	}
	restore := func() ([]byte, RestoreResult, error) {
		var out bytes.Buffer
		res, err := Restore(context.Background(), RestoreInput{Store: st, Stream: s, Identities: []age.Identity{id}, SpoolDir: t.TempDir()}, &out)
		return out.Bytes(), res, err
	}
	if got, res, err := restore(); err != nil || !bytes.Equal(got, data) || len(res.Repaired) != 0 {
		t.Fatalf("intact restore: %v, %d repaired", err, len(res.Repaired))
	}

	// Group 1: part 3 deleted, part 7 flipped. Group 3 (short): part 23 deleted.
	os.Remove(ls.Path(PartKey(s.Key, 3)))
	flip(t, ls.Path(PartKey(s.Key, 7)), 1000)
	os.Remove(ls.Path(PartKey(s.Key, 23)))
	got, res, err := restore()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("restore with 3 damaged parts and parity 10+2: %v", err)
	}
	var parts []int
	for _, r := range res.Repaired {
		parts = append(parts, r.Part)
		t.Log(r)
	}
	if len(parts) != 3 || parts[0] != 3 || parts[1] != 7 || parts[2] != 23 ||
		res.Repaired[0].Why != "missing" || !strings.Contains(res.Repaired[1].Why, "damaged") {
		t.Fatalf("repairs %+v", res.Repaired)
	}
	// The drill reports what parity repaired.
	probs := VerifyData(context.Background(), st, []Stream{s}, t.TempDir())
	if len(probs) != 3 {
		t.Fatalf("drill problems: %v", probs)
	}

	// A third loss in group 1 is more than parity 2 rebuilds: every damaged
	// object is named.
	os.Remove(ls.Path(ParityKey(s.Key, 1, 2)))
	_, _, err = restore()
	var ce *objstore.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("3 losses in one group: %v", err)
	}
	for _, k := range []string{PartKey(s.Key, 3), PartKey(s.Key, 7), ParityKey(s.Key, 1, 2)} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s: %v", k, err)
		}
	}
	t.Log(err)
}

func TestPartObjectsWithoutParityNameEveryDamagedObject(t *testing.T) {
	id := newIdentity(t)
	data := objstoretest.Data(8, 12*64<<10)
	s, st := uploadParity(t, ParitySpec{Data: 10}, data, id)
	ls := st.(interface{ Path(string) string })
	if len(s.Parity.Shards) != 0 || len(s.ObjectKeys()) != len(s.Parts) {
		t.Fatalf("parity 10+0 stored %d shards", len(s.Parity.Shards))
	}
	os.Remove(ls.Path(PartKey(s.Key, 3)))
	flip(t, ls.Path(PartKey(s.Key, 7)), 10)
	var out bytes.Buffer
	_, err := Restore(context.Background(), RestoreInput{Store: st, Stream: s, Identities: []age.Identity{id}, SpoolDir: t.TempDir()}, &out)
	if !errors.Is(err, objstore.ErrCorrupt) || !strings.Contains(err.Error(), PartKey(s.Key, 3)+": missing") ||
		!strings.Contains(err.Error(), PartKey(s.Key, 7)+": damaged") {
		t.Fatalf("restore without parity: %v", err)
	}
	t.Log(err)
}

func TestParitySpecCheck(t *testing.T) {
	for _, p := range []ParitySpec{{Data: -1}, {Data: 0, Parity: 2}, {Data: 2, Parity: 3}, {Data: 250, Parity: 10}} {
		if p.Check() == nil {
			t.Errorf("%s accepted", p)
		}
	}
	for _, p := range []ParitySpec{{}, {Data: 10, Parity: 2}, {Data: 1}, {Data: 128, Parity: 128}} {
		if err := p.Check(); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	f.ReadAt(b, off)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
