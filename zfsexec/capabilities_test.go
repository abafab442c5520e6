package zfsexec

import (
	"context"
	"testing"
)

func TestDetectCapabilitiesZFSFuseCapture(t *testing.T) {
	var version block
	for _, b := range loadBlocks(t, "zfs-fuse-0.7.0/live-capture.txt") {
		if b.Cmd == "zfs version" {
			version = b
		}
	}
	r := newReplay(version, loadBlock(t, "zfs-fuse-0.7.0/zpool-upgrade-v.txt"))
	caps, err := DetectCapabilities(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if caps != zfsFuseCaps(23) || caps.Impl != ImplZFSFuse || caps.Version != "pool-23" {
		t.Fatalf("caps = %+v", caps)
	}
	if caps.ResumableReceive || caps.ListParsable || caps.ZpoolWait || caps.Holds || caps.SendEstimate || caps.Bookmarks {
		t.Errorf("zfs-fuse promised a feature it lacks: %+v", caps)
	}
}

// `zfs version` is not in the OpenZFS capture (it ended at a prompt); this
// is its documented two-line form.
func TestDetectCapabilitiesOpenZFS(t *testing.T) {
	r := newReplay(block{Cmd: "zfs version", Out: "zfs-2.3.2-1~bpo12+1\nzfs-kmod-2.3.2-1~bpo12+1\n"})
	caps, err := DetectCapabilities(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if caps.Impl != ImplOpenZFS || caps.Version != "2.3.2" {
		t.Fatalf("caps = %+v", caps)
	}
	for name, v := range map[string]bool{"ListParsable": caps.ListParsable, "ResumableReceive": caps.ResumableReceive,
		"RawSend": caps.RawSend, "ZpoolWait": caps.ZpoolWait, "JSON": caps.JSON, "Holds": caps.Holds, "Diff": caps.Diff} {
		if !v {
			t.Errorf("2.3.2 lacks %s", name)
		}
	}
	old := openZFSCaps("0.8.6")
	if old.ZpoolWait || old.JSON || !old.RawSend {
		t.Errorf("0.8.6 caps wrong: %+v", old)
	}
}

func TestParsePoolVersionCapture(t *testing.T) {
	b := loadBlock(t, "zfs-fuse-0.7.0/zpool-upgrade-v.txt")
	if v, ok := parsePoolVersion([]byte(b.Out)); !ok || v != 23 {
		t.Fatalf("pool version %d %v", v, ok)
	}
}
