package zfsexec

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"zcloud/zfsname"
)

// Captured on zfs-fuse 0.7.0: a@s2 has two holds, a/b@s1 one.
func TestParseHoldCountsZFSFuse(t *testing.T) {
	blocks := loadBlocks(t, "zfs-fuse-0.7.0/zfs-get-userrefs.txt")
	if len(blocks) != 2 {
		t.Fatalf("want 2 blocks, got %d", len(blocks))
	}
	for _, b := range blocks {
		f := strings.Fields(b.Cmd)
		ds := zfsname.MustDataset(f[len(f)-1])
		recursive := strings.Contains(b.Cmd, " -r ")
		hs, err := parseHoldCounts([]byte(b.Out), ds, recursive)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range hs {
			got = append(got, fmt.Sprintf("%s=%d", h.Snapshot.String()[len(ds.Pool().String()):], h.Holds))
		}
		want := "/a/b@s1=1 /a@s1=0 /a@s2=2"
		if !recursive {
			want = "/a@s1=0 /a@s2=2"
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: got %s, want %s", b.Cmd, strings.Join(got, " "), want)
		}
	}
}

func TestParseHoldCountsSkipsOtherDatasetsAndRejectsJunk(t *testing.T) {
	ds := zfsname.MustDataset("p/a")
	out := "p/a\t-\np/a@x\t1\np/a/b@y\t3\np/ab@z\t4\n"
	hs, err := parseHoldCounts([]byte(out), ds, false)
	if err != nil || len(hs) != 1 || hs[0].Snapshot.Name() != "x" {
		t.Fatalf("non-recursive: %+v %v", hs, err)
	}
	hs, err = parseHoldCounts([]byte(out), ds, true)
	if err != nil || len(hs) != 2 {
		t.Fatalf("recursive (p/ab is not below p/a): %+v %v", hs, err)
	}
	if _, err := parseHoldCounts([]byte("p/a@x\tmany\n"), ds, false); err == nil {
		t.Fatal("non-numeric userrefs accepted")
	}
	if _, err := parseHoldCounts([]byte("p/a@x\n"), ds, false); err == nil {
		t.Fatal("short line accepted")
	}
}

// HoldCounts builds exactly the captured command lines (the replay runner
// answers only those) and returns their parse.
func TestHoldCountsReplaysCapture(t *testing.T) {
	blocks := loadBlocks(t, "zfs-fuse-0.7.0/zfs-get-userrefs.txt")
	r := newReplay(blocks...)
	ds := zfsname.MustDataset(strings.Fields(blocks[0].Cmd)[len(strings.Fields(blocks[0].Cmd))-1])
	for _, rec := range []bool{true, false} {
		hs, err := ZFS{R: r}.HoldCounts(context.Background(), ds, rec)
		if err != nil {
			t.Fatalf("recursive=%v: %v (argv %s)", rec, err, r.lastArgv())
		}
		if want := map[bool]int{true: 3, false: 2}[rec]; len(hs) != want {
			t.Errorf("recursive=%v: %d snapshots, want %d", rec, len(hs), want)
		}
	}
}
