package zfsexec

import (
	"context"
	"strings"
	"testing"

	"zcloud/zfsname"
)

var (
	fuseCaps     = zfsFuseCaps(23)
	openZFS2Caps = openZFSCaps("2.3.2")
)

func TestSendArgv(t *testing.T) {
	s1 := zfsname.MustSnapshot("tank/data@a")
	s2 := zfsname.MustSnapshot("tank/data@b")
	bm, _ := zfsname.ParseBookmark("tank/data#a")
	z := ZFS{Caps: openZFS2Caps}
	cases := []struct {
		o    SendOptions
		want string
	}{
		{SendOptions{}, "zfs send tank/data@b"},
		{SendOptions{From: FromSnapshot(s1)}, "zfs send -i tank/data@a tank/data@b"},
		{SendOptions{From: FromSnapshot(s1), Intermediates: true, Raw: true, Props: true}, "zfs send -w -p -I tank/data@a tank/data@b"},
		{SendOptions{From: FromBookmark(bm)}, "zfs send -i tank/data#a tank/data@b"},
		{SendOptions{Replicate: true, Compressed: true, LargeBlock: true, Embedded: true}, "zfs send -R -c -L -e tank/data@b"},
		{SendOptions{ResumeToken: "1-abc-def"}, "zfs send -t 1-abc-def"},
	}
	for _, c := range cases {
		argv, err := z.SendArgv(s2, c.o)
		if err != nil || strings.Join(argv, " ") != c.want {
			t.Errorf("%+v: got %q %v, want %q", c.o, argv, err, c.want)
		}
	}
	bad := []SendOptions{
		{From: FromBookmark(bm), Intermediates: true},
		{From: FromSnapshot(s2)},
		{ResumeToken: "1-abc", Raw: true},
		{ResumeToken: "1-abc;id"},
	}
	for _, o := range bad {
		if argv, err := z.SendArgv(s2, o); err == nil {
			t.Errorf("%+v accepted: %q", o, argv)
		}
	}
	// zfs-fuse: refused before running, as UnsupportedError.
	zf := ZFS{Caps: fuseCaps}
	for _, o := range []SendOptions{{Raw: true}, {ResumeToken: "1-abc"}, {Compressed: true}, {From: FromBookmark(bm)}} {
		if _, err := zf.SendArgv(s2, o); !IsUnsupported(err) {
			t.Errorf("zfs-fuse %+v: err %v, want unsupported", o, err)
		}
	}
	if argv, err := zf.SendArgv(s2, SendOptions{From: FromSnapshot(s1), Intermediates: true, Replicate: true, Props: true}); err != nil ||
		strings.Join(argv, " ") != "zfs send -R -p -I tank/data@a tank/data@b" {
		t.Errorf("zfs-fuse -R -p -I: %q %v", argv, err)
	}
	if _, err := zf.EstimateSize(context.Background(), s2, SendOptions{}); !IsUnsupported(err) {
		t.Errorf("zfs-fuse estimate: %v", err)
	}
}

func TestEstimateSizeReplay(t *testing.T) {
	r := newReplay(loadBlock(t, "openzfs-2.3.2/zfs-send-nvP-incremental.txt"))
	z := ZFS{R: r, Caps: openZFS2Caps}
	n, err := z.EstimateSize(context.Background(), zfsname.MustSnapshot("tank/data@2026-11-22T0100Z"), SendOptions{From: FromSnapshot(zfsname.MustSnapshot("tank/data@2026-11-22T0000Z"))})
	if err != nil || n != 38000 {
		t.Fatalf("estimate %d %v", n, err)
	}
}

func TestReceiveArgv(t *testing.T) {
	z := ZFS{Caps: openZFS2Caps}
	var p Props
	if err := p.Set("readonly", "on"); err != nil {
		t.Fatal(err)
	}
	p.Set("mountpoint", "none")
	argv, err := z.ReceiveArgv(zfsname.MustDataset("backup/data"), ReceiveOptions{Force: true, Resumable: true, NoMount: true, Props: p, Exclude: []zfsname.PropName{"encryption"}})
	want := "zfs receive -F -s -u -o mountpoint=none -o readonly=on -x encryption backup/data"
	if err != nil || strings.Join(argv, " ") != want {
		t.Fatalf("got %q %v\nwant %q", argv, err, want)
	}
	zf := ZFS{Caps: fuseCaps}
	if _, err := zf.ReceiveArgv(zfsname.MustDataset("b/d"), ReceiveOptions{Resumable: true}); !IsUnsupported(err) {
		t.Errorf("zfs-fuse -s: %v", err)
	}
	if argv, err := zf.ReceiveArgv(zfsname.MustDataset("b/d"), ReceiveOptions{Force: true}); err != nil || strings.Join(argv, " ") != "zfs receive -F b/d" {
		t.Errorf("zfs-fuse -F: %q %v", argv, err)
	}
	if _, err := z.ReceiveArgv(zfsname.MustDataset("b/d"), ReceiveOptions{Exclude: []zfsname.PropName{"-x"}}); err == nil {
		t.Error("bad -x property accepted")
	}
}

func TestCommandArgv(t *testing.T) {
	ctx := context.Background()
	r := newReplay()
	z := ZFS{R: r, Caps: openZFS2Caps}
	a, b := zfsname.MustSnapshot("tank/a@s"), zfsname.MustSnapshot("tank/b@s")
	check := func(want string) {
		t.Helper()
		if got := r.lastArgv(); got != want {
			t.Errorf("argv %q, want %q", got, want)
		}
	}
	z.Snapshot(ctx, false, Props{}, a, b)
	check("zfs snapshot tank/a@s tank/b@s")
	z.Snapshot(ctx, true, MustProps("zcloud:by", "policy"), a)
	check("zfs snapshot -r -o zcloud:by=policy tank/a@s")
	z.Create(ctx, zfsname.MustDataset("tank/x/y"), CreateOptions{Parents: true, Props: MustProps("compression", "lz4")})
	check("zfs create -p -o compression=lz4 tank/x/y")
	z.DestroySnapshot(ctx, a, true)
	check("zfs destroy -r tank/a@s")
	z.DestroyDataset(ctx, zfsname.MustDataset("tank/x"), true)
	check("zfs destroy -r tank/x")
	if err := z.DestroyDataset(ctx, zfsname.MustDataset("tank"), true); err == nil {
		t.Error("destroying a pool root accepted")
	}
	z.Hold(ctx, "zcloud-repl", false, a, b)
	check("zfs hold zcloud-repl tank/a@s tank/b@s")
	z.Release(ctx, "zcloud-repl", true, a)
	check("zfs release -r zcloud-repl tank/a@s")
	if err := z.Hold(ctx, "-r", false, a); err == nil {
		t.Error("hold tag '-r' accepted")
	}
	z.Rename(ctx, zfsname.MustDataset("tank/a"), zfsname.MustDataset("tank/z/a"), true)
	check("zfs rename -p tank/a tank/z/a")
	z.LoadKey(ctx, zfsname.MustDataset("tank/secure"), strings.NewReader("secret"))
	check("zfs load-key -L prompt tank/secure")
	if strings.Contains(r.lastArgv(), "secret") {
		t.Error("key in argv")
	}
	z.ListSnapshots(ctx, zfsname.MustDataset("tank/a"))
	check("zfs get -Hp -d 1 -o name,property,value guid,createtxg,creation,used tank/a")
	z.Set(ctx, zfsname.MustDataset("tank/a"), MustProps("readonly", "on"))
	check("zfs set readonly=on tank/a")

	zf := ZFS{R: r, Caps: fuseCaps}
	if err := zf.Snapshot(ctx, false, Props{}, a, b); !IsUnsupported(err) {
		t.Errorf("zfs-fuse multi snapshot: %v", err)
	}
	if _, err := zf.Holds(ctx, a); !IsUnsupported(err) {
		t.Errorf("zfs-fuse holds: %v", err)
	}
	if tok, err := zf.ResumeToken(ctx, zfsname.MustDataset("tank/a")); err != nil || tok != "" {
		t.Errorf("zfs-fuse resume token: %q %v", tok, err)
	}
}

func TestPropValidation(t *testing.T) {
	for _, bad := range []string{"", "-o", "Compression", "a b", "a;b", "a\nb", "$(id)", "é"} {
		if _, err := zfsname.ParsePropName(bad); err == nil {
			t.Errorf("property name %q accepted", bad)
		}
	}
	for _, bad := range []string{"a\nb", "a\tb", "a\x00b", "\x1b[2J"} {
		if _, err := zfsname.ParsePropValue("x", bad); err == nil {
			t.Errorf("property value %q accepted", bad)
		}
	}
	if _, err := zfsname.ParsePropValue("zcloud:note", "it's $(fine) `here`; really"); err != nil {
		t.Errorf("printable value refused: %v", err)
	}
}
