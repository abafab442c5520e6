package zfsexec

import (
	"errors"
	"strings"
	"testing"

	"zcloud/zfsname"
)

func TestParseGetOpenZFS(t *testing.T) {
	b := loadBlock(t, "openzfs-2.3.2/zfs-get-Hp-encryption.txt")
	ps, err := parseGet([]byte(b.Out))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 14 {
		t.Fatalf("got %d rows", len(ps))
	}
	want := Property{"tank/secure", "encryptionroot", "tank/secure", "-"}
	if ps[11] != want {
		t.Errorf("row 11 = %+v, want %+v", ps[11], want)
	}
	if ps[10] != (Property{"tank/secure", "keylocation", "prompt", "local"}) {
		t.Errorf("row 10 = %+v", ps[10])
	}
}

func TestParseGetZFSFuse(t *testing.T) {
	b := loadBlock(t, "zfs-fuse-0.7.0/zfs-get-Hp-all.txt")
	ps, err := parseGet([]byte(b.Out))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range ps {
		got[p.Property] = p.Value
	}
	if got["creation"] != "1795369436" || got["used"] != "17060912" || got["compression"] != "on" {
		t.Errorf("creation/used/compression = %q %q %q", got["creation"], got["used"], got["compression"])
	}
}

func TestParseGetFieldCount(t *testing.T) {
	_, err := parseGet([]byte("tank\tused\t5\n" + "tank\tused\t5\t-\n"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.LineNo != 1 || !strings.Contains(pe.Error(), "want 4") {
		t.Fatalf("err = %v", err)
	}
}

// The live zfs-fuse capture has the exact `zfs get -d 1` ListSnapshots runs.
func TestParseSnapshotGetZFSFuse(t *testing.T) {
	var b block
	for _, x := range loadBlocks(t, "zfs-fuse-0.7.0/live-capture.txt") {
		if strings.Contains(x.Cmd, "get -Hp -d 1 -o name,property,value guid,createtxg,creation,used") {
			b = x
		}
	}
	ds := zfsname.MustDataset(strings.Fields(b.Cmd)[len(strings.Fields(b.Cmd))-1])
	snaps, err := parseSnapshotGet([]byte(b.Out), ds)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].Snapshot.Name() != "s1" || snaps[1].Snapshot.Name() != "s2" {
		t.Fatalf("snaps = %+v", snaps)
	}
	if snaps[0].GUID == 0 || snaps[0].GUID == snaps[1].GUID {
		t.Errorf("guid = %d", snaps[0].GUID)
	}
	if snaps[0].CreateTXG >= snaps[1].CreateTXG || snaps[0].Creation == 0 {
		t.Errorf("order/creation wrong: %+v", snaps)
	}
}

func TestParseSnapshotGetSortsAndChecksCompleteness(t *testing.T) {
	out := "p/d@b\tguid\t2\np/d@b\tcreatetxg\t20\np/d@b\tcreation\t100\np/d@b\tused\t0\n" +
		"p/d/c@x\tguid\t9\n" +
		"p/d@a\tguid\t1\np/d@a\tcreatetxg\t10\np/d@a\tcreation\t90\np/d@a\tused\t5\n"
	snaps, err := parseSnapshotGet([]byte(out), zfsname.MustDataset("p/d"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 || snaps[0].GUID != 1 || snaps[1].GUID != 2 || snaps[0].Used != 5 {
		t.Fatalf("snaps = %+v", snaps)
	}
	if _, err := parseSnapshotGet([]byte("p/d@a\tguid\t1\n"), zfsname.MustDataset("p/d")); err == nil {
		t.Fatal("incomplete snapshot rows accepted")
	}
	if _, err := parseSnapshotGet([]byte("p/d@a\tguid\tx\n"), zfsname.MustDataset("p/d")); err == nil {
		t.Fatal("non-numeric guid accepted")
	}
}

func TestParseBookmarksOpenZFS(t *testing.T) {
	b := loadBlock(t, "openzfs-2.3.2/zfs-list-Hp-bookmark.txt")
	bs, err := parseBookmarkList([]byte(b.Out))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Bookmark.String() != "tank/data#2026-11-22T0000Z" || bs[0].GUID != 4623290847835132074 || bs[0].CreateTXG != 11 {
		t.Fatalf("bookmarks = %+v", bs)
	}
	// The bookmark's GUID is its snapshot's (zfs list -Hp capture).
	l := loadBlock(t, "openzfs-2.3.2/zfs-list-Hp-all.txt")
	if !strings.Contains(l.Out, "tank/data@2026-11-22T0000Z\tsnapshot\t87296\t-\t16913600\t-\t4623290847835132074\t11") {
		t.Error("capture mismatch")
	}
}

func TestParseHoldsOpenZFS(t *testing.T) {
	b := loadBlock(t, "openzfs-2.3.2/zfs-holds-H.txt")
	hs, err := parseHolds([]byte(b.Out))
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Tag != "zcloud" || hs[0].Snapshot.String() != "tank/data@2026-11-22T0100Z" || hs[0].Created != "Sun Nov 22 17:32 2026" {
		t.Fatalf("holds = %+v", hs)
	}
}

func TestParseSendEstimateOpenZFS(t *testing.T) {
	for file, want := range map[string]int64{
		"openzfs-2.3.2/zfs-send-nvP-incremental.txt":  38000,
		"openzfs-2.3.2/zfs-send-nvP-raw.txt":          4275568,
		"openzfs-2.3.2/zfs-send-nvP-resume-token.txt": 13959584,
	} {
		b := loadBlock(t, file)
		got, err := parseSendEstimate([]byte(b.Out))
		if err != nil || got != want {
			t.Errorf("%s: got %d, %v; want %d", file, got, err, want)
		}
	}
	if _, err := parseSendEstimate([]byte("full\tx@y\t5\n")); err == nil {
		t.Error("missing size line accepted")
	}
}

func TestParseDiffOpenZFS(t *testing.T) {
	b := loadBlock(t, "openzfs-2.3.2/zfs-diff-FH.txt")
	cs, err := parseDiff([]byte(b.Out))
	if err != nil {
		t.Fatal(err)
	}
	want := []DiffChange{
		{'R', 'F', "/tank/data/f1", "/tank/data/f1moved", 0},
		{'M', '/', "/tank/data/", "", 0},
		{'+', 'F', "/tank/data/f2", "", 0},
	}
	if len(cs) != len(want) {
		t.Fatalf("got %+v", cs)
	}
	for i := range want {
		if cs[i] != want[i] {
			t.Errorf("%d: got %+v want %+v", i, cs[i], want[i])
		}
	}
	cs, err = parseDiff([]byte("+\tF\t/tank/a\\040b\\012c\n"))
	if err != nil || cs[0].Path != "/tank/a b\nc" {
		t.Errorf("escaped path: %+v %v", cs, err)
	}
	// A hard link added or removed: the object's name and the link delta.
	cs, err = parseDiff([]byte("M\tF\t/tank/a\t(-1)\nM\tF\t/tank/b\t(+2)\n"))
	if err != nil || len(cs) != 2 || cs[0].LinkDelta != -1 || cs[0].Path != "/tank/a" || cs[1].LinkDelta != 2 {
		t.Errorf("link deltas: %+v %v", cs, err)
	}
	for _, bad := range []string{"R\tF\t/a\n", "+\tF\t/a\t/b\n", "X\tF\t/a\n", "+\tF\t/a\\04\n", "M\tF\t/a\t(x)\n"} {
		if _, err := parseDiff([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestResumeTokenFromCapture(t *testing.T) {
	b := loadBlock(t, "openzfs-2.3.2/zfs-get-resume-token.txt")
	tok, err := zfsname.ParseResumeToken(strings.TrimSpace(b.Out))
	if err != nil {
		t.Fatal(err)
	}
	// The send -nvP -t block was run with exactly this token.
	s := loadBlock(t, "openzfs-2.3.2/zfs-send-nvP-resume-token.txt")
	if s.Cmd != "zfs send -nvP -t "+string(tok) {
		t.Errorf("token differs from the one sent: %s", s.Cmd)
	}
	for _, bad := range []string{"", "-", "1-abc;rm", "1-ABC", "2-abc", "1-ab c"} {
		if _, err := zfsname.ParseResumeToken(bad); err == nil {
			t.Errorf("accepted token %q", bad)
		}
	}
}
