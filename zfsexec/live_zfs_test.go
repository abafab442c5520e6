package zfsexec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"zcloud/zfsname"
)

// TestLiveReplicate: full then -I incremental through Send/Receive into a
// second pool; files identical, snapshot GUIDs identical on both sides.
func TestLiveReplicate(t *testing.T) {
	r, caps := liveLocal(t)
	t.Logf("detected %s: %+v", caps, caps)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	z := ZFS{R: r, Caps: caps}
	srcPool, _, _ := filePool(t, r, caps, Layout{Stripe, 1}, 1, 128<<20)
	dstPool, _, _ := filePool(t, r, caps, Layout{Stripe, 1}, 1, 128<<20)
	src, _ := srcPool.Root().Child("data")
	dst, _ := dstPool.Root().Child("data")

	if ok, err := z.Exists(ctx, src); err != nil || ok {
		t.Fatalf("Exists before create = %v %v", ok, err)
	}
	if err := z.Create(ctx, src, CreateOptions{Props: MustProps("compression", "on", "zcloud:note", "$(touch /tmp/zcloud-canary)")}); err != nil {
		t.Fatal(err)
	}
	child, _ := src.Child("sub")
	if err := z.Create(ctx, child, CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := z.Exists(ctx, src); err != nil || !ok {
		t.Fatalf("Exists after create = %v %v", ok, err)
	}
	ds, err := z.ListDatasets(ctx, srcPool.Root())
	if err != nil || len(ds) != 3 || ds[1] != src || ds[2] != child {
		t.Fatalf("ListDatasets = %v %v", ds, err)
	}
	note, err := z.GetOne(ctx, src, "zcloud:note")
	if err != nil || note != "$(touch /tmp/zcloud-canary)" {
		t.Fatalf("user property = %q %v", note, err)
	}
	if _, err := os.Stat("/tmp/zcloud-canary"); err == nil {
		t.Fatal("property value was executed")
	}

	mnt := "/" + src.String()
	writeTree(t, mnt, map[string]int{"a.bin": 1 << 20, "dir/b.bin": 700 << 10, "dir/deeper/c.bin": 300 << 10, "empty": 0})
	s1, _ := src.Snapshot("s1")
	if err := z.Snapshot(ctx, false, Props{}, s1); err != nil {
		t.Fatal(err)
	}
	if err := z.Snapshot(ctx, false, Props{}, s1); !errors.Is(err, ErrExists) {
		t.Errorf("second snapshot s1: %v, want ErrExists", err)
	}

	if err := pipe(ctx, z, z, s1, SendOptions{}, dst, ReceiveOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mnt, "/"+dst.String())

	// A full stream onto the existing target must fail as ErrExists.
	if err := pipe(ctx, z, z, s1, SendOptions{}, dst, ReceiveOptions{}); !errors.Is(err, ErrExists) {
		t.Errorf("full onto existing: %v, want ErrExists", err)
	}

	writeTree(t, mnt, map[string]int{"a.bin": 512 << 10, "dir/new.bin": 200 << 10})
	os.Remove(filepath.Join(mnt, "dir/deeper/c.bin"))
	s2, _ := src.Snapshot("s2")
	z.Snapshot(ctx, false, Props{}, s2)
	writeTree(t, mnt, map[string]int{"dir/deeper/d.bin": 100 << 10})
	s3, _ := src.Snapshot("s3")
	z.Snapshot(ctx, false, Props{}, s3)

	inc := SendOptions{From: FromSnapshot(s1), Intermediates: true}
	if _, err := z.EstimateSize(ctx, s3, inc); caps.SendEstimate != (err == nil) {
		t.Errorf("EstimateSize err %v with SendEstimate=%v", err, caps.SendEstimate)
	} else if err != nil && !IsUnsupported(err) {
		t.Errorf("EstimateSize on %s: %v, want UnsupportedError", caps, err)
	}
	if err := pipe(ctx, z, z, s3, inc, dst, ReceiveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, mnt, "/"+dst.String())

	ss, err := z.ListSnapshots(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	ds2, err := z.ListSnapshots(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 || len(ds2) != 3 {
		t.Fatalf("snapshots: src %+v dst %+v", ss, ds2)
	}
	for i := range ss {
		if ss[i].Snapshot.Name() != ds2[i].Snapshot.Name() || ss[i].GUID != ds2[i].GUID || ss[i].GUID == 0 {
			t.Errorf("snapshot %d: src %+v dst %+v", i, ss[i], ds2[i])
		}
		if i > 0 && ss[i].CreateTXG <= ss[i-1].CreateTXG {
			t.Errorf("not sorted by createtxg: %+v", ss)
		}
		if ss[i].Creation < time.Now().Add(-time.Hour).Unix() {
			t.Errorf("creation %d is not unix seconds of now", ss[i].Creation)
		}
	}

	if tok, err := z.ResumeToken(ctx, dst); err != nil || tok != "" {
		t.Errorf("ResumeToken = %q %v", tok, err)
	}
	if _, err := z.ListSnapshots(ctx, zfsname.MustDataset(srcPool.String()+"/nope")); !errors.Is(err, ErrDatasetNotFound) {
		t.Errorf("ListSnapshots of missing dataset: %v", err)
	}

	// Holds: hold/release everywhere, listing only where supported.
	tag, _ := zfsname.ParseHoldTag("zcloud-test")
	if err := z.Hold(ctx, tag, false, s2); err != nil {
		t.Fatal(err)
	}
	if n, err := z.HoldCount(ctx, s2); err != nil || n != 1 {
		t.Errorf("HoldCount = %d %v", n, err)
	}
	if err := z.DestroySnapshot(ctx, s2, false); !errors.Is(err, ErrBusy) {
		t.Errorf("destroy held snapshot: %v, want ErrBusy", err)
	}
	hs, err := z.Holds(ctx, s2)
	if caps.Holds {
		if err != nil || len(hs) != 1 || hs[0].Tag != tag {
			t.Errorf("Holds = %+v %v", hs, err)
		}
	} else if !IsUnsupported(err) {
		t.Errorf("Holds on %s: %v, want UnsupportedError", caps, err)
	}
	if err := z.Release(ctx, tag, false, s2); err != nil {
		t.Fatal(err)
	}
	if err := z.Release(ctx, tag, false, s2); !errors.Is(err, ErrHoldNotFound) {
		t.Errorf("second release: %v, want ErrHoldNotFound", err)
	}
	if err := z.DestroySnapshot(ctx, s2, false); err != nil {
		t.Fatal(err)
	}
	if ok, _ := z.SnapshotExists(ctx, s2); ok {
		t.Error("s2 still exists")
	}

	// Rename and destroy.
	moved, _ := dstPool.Root().Child("moved")
	if err := z.Rename(ctx, dst, moved, false); err != nil {
		t.Fatal(err)
	}
	if err := z.DestroyDataset(ctx, moved, true); err != nil {
		t.Fatal(err)
	}
	if ok, _ := z.Exists(ctx, moved); ok {
		t.Error("destroyed dataset still exists")
	}
}
