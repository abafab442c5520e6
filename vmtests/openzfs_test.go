// Package vmtests runs zcloud's ZFS, LUKS and disk code against real OpenZFS
// 2.3 in the qemu VM of vm/openzfs-vm.sh, for everything zfs-fuse and this
// host cannot do. The VM is required: the tests fail when it cannot be built
// or booted, unless ZCLOUD_SKIP_VM=1.
package vmtests

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"zcloud/internal/vmhost"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

const gib = 1 << 30

func TestCapabilitiesDetected(t *testing.T) {
	h := vmHost(t)
	c := h.caps
	t.Logf("detected %s", c)
	if c.Impl != zfsexec.ImplOpenZFS || !strings.HasPrefix(c.Version, "2.3") {
		t.Fatalf("want OpenZFS 2.3, got %s", c)
	}
	for name, ok := range map[string]bool{
		"ListParsable": c.ListParsable, "ResumableReceive": c.ResumableReceive, "RawSend": c.RawSend,
		"Bookmarks": c.Bookmarks, "Diff": c.Diff, "ZpoolWait": c.ZpoolWait, "NativeEncryption": c.NativeEncryption,
		"JSON": c.JSON, "SendEstimate": c.SendEstimate, "ReceiveOptions": c.ReceiveOptions, "OnlineExpand": c.OnlineExpand,
	} {
		if !ok {
			t.Errorf("capability %s not detected on %s", name, c)
		}
	}
}

// Native encryption: the key reaches `zfs load-key` on SSH stdin only; a
// wrong key is ErrKeyIncorrect; the right one makes the data readable again.
func TestLoadKeyOnStdin(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, gib)
	ds := zfsname.MustDataset(p.String() + "/secure")
	key := "pass-" + randHex(12)
	h.createEncrypted(t, ds, key)
	sum := h.writeRandom(t, "/"+ds.String()+"/f", 2)

	if err := h.zfs.Unmount(ctx, ds, false); err != nil {
		t.Fatal(err)
	}
	if err := h.zfs.UnloadKey(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if ks := h.prop(t, ds, "keystatus"); ks != "unavailable" {
		t.Fatalf("keystatus after unload-key = %q", ks)
	}

	err := h.zfs.LoadKey(ctx, ds, strings.NewReader("wrong-"+randHex(8)+"\n"))
	if !errors.Is(err, zfsexec.ErrKeyIncorrect) {
		t.Fatalf("wrong key: want ErrKeyIncorrect, got %v", err)
	}
	if ks := h.prop(t, ds, "keystatus"); ks != "unavailable" {
		t.Fatalf("keystatus after a wrong key = %q", ks)
	}

	// The key is on stdin, never in the command line zcloud sends.
	rec := &argvRecorder{Runner: h.r}
	if err := (zfsexec.ZFS{R: rec, Caps: h.caps}).LoadKey(ctx, ds, strings.NewReader(key+"\n")); err != nil {
		t.Fatal(err)
	}
	for _, a := range rec.argvs {
		if strings.Contains(strings.Join(a, " "), key) {
			t.Fatalf("key in argv %q", a)
		}
	}
	if ks := h.prop(t, ds, "keystatus"); ks != "available" {
		t.Fatalf("keystatus after load-key = %q", ks)
	}
	if err := h.zfs.Mount(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if got := h.sha256(t, "/"+ds.String()+"/f"); got != sum {
		t.Fatalf("data after load-key: sha256 %s, want %s", got, sum)
	}
}

type argvRecorder struct {
	zfsexec.Runner
	argvs [][]string
}

func (a *argvRecorder) Run(ctx context.Context, c zfsexec.Cmd) (zfsexec.Result, error) {
	a.argvs = append(a.argvs, c.Argv)
	return a.Runner.Run(ctx, c)
}

// Raw send of an encrypted dataset: the stream carries ciphertext only, the
// receiving side gets an encrypted dataset without its key, and the data is
// readable there once the key is loaded.
func TestRawSendReceiveEncrypted(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	src, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, gib)
	dst, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, gib)
	ds := zfsname.MustDataset(src.String() + "/secure")
	key := "pass-" + randHex(12)
	// compression=off so that a non-raw stream would show the plaintext.
	h.createEncrypted(t, ds, key, "compression=off")
	marker := "zcloud-plaintext-marker-" + randHex(8)
	h.sh(t, `for i in $(seq 1 200); do echo "$2"; done > "$1/plain.txt"; sync`, "/"+ds.String(), marker)
	sum := h.writeRandom(t, "/"+ds.String()+"/f", 2)
	plainSum := h.sha256(t, "/"+ds.String()+"/plain.txt")
	snap, _ := ds.Snapshot("s1")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, snap); err != nil {
		t.Fatal(err)
	}

	target := zfsname.MustDataset(dst.String() + "/copy")
	var stream capture
	sendErr, recvErr := h.pipe(ctx, snap, zfsexec.SendOptions{Raw: true}, target, zfsexec.ReceiveOptions{}, -1, &stream)
	if sendErr != nil || recvErr != nil {
		t.Fatalf("raw send/receive: send %v, receive %v", sendErr, recvErr)
	}
	if bytes.Contains(stream.Bytes(), []byte(marker)) {
		t.Fatal("the raw stream contains the plaintext")
	}
	if stream.Len() < 2<<20 {
		t.Fatalf("stream of %d bytes is too short", stream.Len())
	}

	// The receiving side never had the key.
	for prop, want := range map[zfsname.PropName]string{
		"encryption":     "aes-256-gcm",
		"keystatus":      "unavailable",
		"encryptionroot": target.String(),
		"mounted":        "no",
	} {
		if got := h.prop(t, target, prop); got != want {
			t.Errorf("received %s = %q, want %q", prop, got, want)
		}
	}
	if err := h.zfs.Mount(ctx, target); err == nil {
		t.Fatal("mounted the received dataset without its key")
	}
	if t.Failed() {
		return
	}
	// With the key, the copy reads back identical.
	if err := h.zfs.LoadKey(ctx, target, strings.NewReader(key+"\n")); err != nil {
		t.Fatal(err)
	}
	if err := h.zfs.Mount(ctx, target); err != nil {
		t.Fatal(err)
	}
	if got := h.sha256(t, "/"+target.String()+"/f"); got != sum {
		t.Fatalf("received data: sha256 %s, want %s", got, sum)
	}
	if got := h.sha256(t, "/"+target.String()+"/plain.txt"); got != plainSum {
		t.Fatalf("received text: sha256 %s, want %s", got, plainSum)
	}
}

// An interrupted resumable receive keeps a receive_resume_token; resuming
// from it completes the snapshot. A stale token (its snapshot gone on the
// source) fails to resume; the fallback is zfs receive -A and a fresh send.
func TestInterruptedReceiveResumes(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 15*time.Minute)
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 2*gib)
	src := zfsname.MustDataset(p.String() + "/src")
	if err := h.zfs.Create(ctx, src, zfsexec.CreateOptions{Props: zfsexec.MustProps("compression", "off")}); err != nil {
		t.Fatal(err)
	}
	sum := h.writeRandom(t, "/"+src.String()+"/f", 16)
	s1, _ := src.Snapshot("s1")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, s1); err != nil {
		t.Fatal(err)
	}
	dst := zfsname.MustDataset(p.String() + "/dst")
	ro := zfsexec.ReceiveOptions{Resumable: true}

	// 1. Cut after 5 MiB.
	_, recvErr := h.pipe(ctx, s1, zfsexec.SendOptions{}, dst, ro, 5<<20, nil)
	if recvErr == nil {
		t.Fatal("receive of a cut stream succeeded")
	}
	t.Logf("cut receive: %v", recvErr)
	tok, err := h.zfs.ResumeToken(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if tok == "" {
		t.Fatal("no receive_resume_token after an interrupted resumable receive")
	}
	if n, err := h.zfs.EstimateSize(ctx, zfsname.Snapshot{}, zfsexec.SendOptions{ResumeToken: tok}); err != nil || n <= 0 || n >= 17<<20 {
		t.Errorf("resume estimate: %d bytes, %v (want the remaining part of ~16 MiB)", n, err)
	}

	// 2. Resume from the token: only the rest is sent.
	var rest capture
	sendErr, recvErr := h.pipe(ctx, zfsname.Snapshot{}, zfsexec.SendOptions{ResumeToken: tok}, dst, ro, -1, &rest)
	if sendErr != nil || recvErr != nil {
		t.Fatalf("resume: send %v, receive %v", sendErr, recvErr)
	}
	if rest.Len() >= 16<<20 {
		t.Errorf("resumed stream is %d bytes: not a resume", rest.Len())
	}
	if tok, _ := h.zfs.ResumeToken(ctx, dst); tok != "" {
		t.Errorf("token still present after the resume: %s", tok)
	}
	if ok, err := h.zfs.SnapshotExists(ctx, s1.On(dst)); err != nil || !ok {
		t.Fatalf("%s after resume: exists=%v err=%v", s1.On(dst), ok, err)
	}
	if got := h.sha256(t, "/"+dst.String()+"/f"); got != sum {
		t.Fatalf("resumed data: sha256 %s, want %s", got, sum)
	}

	// 3. A stale token: interrupt an incremental, then destroy its source
	// snapshot. The resume fails; receive -A and a fresh send recover.
	h.writeRandom(t, "/"+src.String()+"/g", 8)
	s2, _ := src.Snapshot("s2")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, s2); err != nil {
		t.Fatal(err)
	}
	inc := zfsexec.SendOptions{From: zfsexec.FromSnapshot(s1)}
	if _, recvErr := h.pipe(ctx, s2, inc, dst, ro, 3<<20, nil); recvErr == nil {
		t.Fatal("receive of a cut incremental succeeded")
	}
	tok, err = h.zfs.ResumeToken(ctx, dst)
	if err != nil || tok == "" {
		t.Fatalf("no token after the cut incremental: %q %v", tok, err)
	}
	if err := h.zfs.DestroySnapshot(ctx, s2, false); err != nil {
		t.Fatal(err)
	}
	sendErr, recvErr = h.pipe(ctx, zfsname.Snapshot{}, zfsexec.SendOptions{ResumeToken: tok}, dst, ro, -1, nil)
	if sendErr == nil && recvErr == nil {
		t.Fatal("resume from a stale token succeeded")
	}
	t.Logf("stale token: send %v; receive %v", sendErr, recvErr)
	// A fresh send is refused while the partial state is there...
	s3, _ := src.Snapshot("s3")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, s3); err != nil {
		t.Fatal(err)
	}
	_, recvErr = h.pipe(ctx, s3, inc, dst, ro, -1, nil)
	if !errors.Is(recvErr, zfsexec.ErrResumeTokenPresent) {
		t.Fatalf("fresh send onto partial state: want ErrResumeTokenPresent, got %v", recvErr)
	}
	// ...and works after receive -A.
	if err := h.zfs.AbortReceive(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if tok, _ := h.zfs.ResumeToken(ctx, dst); tok != "" {
		t.Fatalf("token still present after receive -A: %s", tok)
	}
	sendErr, recvErr = h.pipe(ctx, s3, inc, dst, ro, -1, nil)
	if sendErr != nil || recvErr != nil {
		t.Fatalf("fresh send after receive -A: send %v, receive %v", sendErr, recvErr)
	}
	if got := h.sha256(t, "/"+dst.String()+"/g"); got != h.sha256(t, "/"+src.String()+"/g") {
		t.Fatal("data after the fallback differs")
	}
}

// zfs diff -FH from a live OpenZFS, through zfsexec's parser: adds, removes,
// modifications, renames, and names that need escaping.
func TestDiffLive(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, gib)
	ds := zfsname.MustDataset(p.String() + "/d")
	if err := h.zfs.Create(ctx, ds, zfsexec.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m := "/" + ds.String()
	h.sh(t, `cd "$1" && mkdir dir && echo a > keep && echo b > gone && echo c > old && echo d > dir/inner && sync`, m)
	a, _ := ds.Snapshot("a")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, a); err != nil {
		t.Fatal(err)
	}
	h.sh(t, `cd "$1" && echo more >> keep && rm gone && mv old new && echo x > "with space" && printf y > "$(printf 'caf\303\251')" && ln -s keep link && sync`, m)
	b, _ := ds.Snapshot("b")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, b); err != nil {
		t.Fatal(err)
	}
	changes, err := h.zfs.Diff(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		s := string(c.Change) + " " + string(c.FileType) + " " + strings.TrimPrefix(c.Path, m)
		if c.NewPath != "" {
			s += " -> " + strings.TrimPrefix(c.NewPath, m)
		}
		got = append(got, s)
	}
	sort.Strings(got)
	want := []string{
		"+ @ /link",
		"+ F /café",
		"+ F /with space",
		"- F /gone",
		"M / /",
		"M F /keep",
		"R F /old -> /new",
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("zfs diff parsed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Against the live filesystem too.
	h.sh(t, `rm "$1/keep"; sync`, m)
	live, err := h.zfs.Diff(ctx, b, zfsname.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range live {
		if c.Change == '-' && c.Path == m+"/keep" {
			found = true
		}
	}
	if !found {
		t.Fatalf("live diff misses the removal: %+v", live)
	}
}

// A bookmark is an incremental base: after the source snapshot is gone, an
// incremental from its bookmark still applies on the target.
func TestBookmarkIncrementalBase(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, gib)
	src := zfsname.MustDataset(p.String() + "/src")
	dst := zfsname.MustDataset(p.String() + "/dst")
	if err := h.zfs.Create(ctx, src, zfsexec.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.writeRandom(t, "/"+src.String()+"/f1", 2)
	s1, _ := src.Snapshot("s1")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, s1); err != nil {
		t.Fatal(err)
	}
	if se, re := h.pipe(ctx, s1, zfsexec.SendOptions{}, dst, zfsexec.ReceiveOptions{NoMount: true}, -1, nil); se != nil || re != nil {
		t.Fatalf("full send: %v %v", se, re)
	}
	b1, _ := src.Bookmark("b1")
	if err := h.zfs.Bookmark(ctx, s1, b1); err != nil {
		t.Fatal(err)
	}
	snaps, err := h.zfs.ListSnapshots(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.zfs.DestroySnapshot(ctx, s1, false); err != nil {
		t.Fatal(err)
	}
	bms, err := h.zfs.ListBookmarks(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(bms) != 1 || bms[0].Bookmark.String() != b1.String() || len(snaps) != 1 || bms[0].GUID != snaps[0].GUID {
		t.Fatalf("bookmarks %+v; snapshots before %+v: want b1 with s1's guid", bms, snaps)
	}
	sum2 := h.writeRandom(t, "/"+src.String()+"/f2", 2)
	s2, _ := src.Snapshot("s2")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, s2); err != nil {
		t.Fatal(err)
	}
	var stream capture
	se, re := h.pipe(ctx, s2, zfsexec.SendOptions{From: zfsexec.FromBookmark(b1)}, dst, zfsexec.ReceiveOptions{}, -1, &stream)
	if se != nil || re != nil {
		t.Fatalf("incremental from bookmark: send %v, receive %v", se, re)
	}
	if stream.Len() > 3<<20 {
		t.Errorf("incremental stream %d bytes: not incremental", stream.Len())
	}
	dsnaps, err := h.zfs.ListSnapshots(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(dsnaps) != 2 || dsnaps[0].GUID != bms[0].GUID || dsnaps[1].Snapshot.Name() != "s2" {
		t.Fatalf("target snapshots %+v", dsnaps)
	}
	if err := h.zfs.Mount(ctx, dst); err != nil {
		t.Fatal(err)
	}
	if got := h.sha256(t, "/"+dst.String()+"/f2"); got != sum2 {
		t.Fatalf("f2 on target: %s, want %s", got, sum2)
	}
}

// zpool wait blocks while a resilver or scrub is in progress and returns
// when it is done. Scans are held still with the zfs_scan_suspend_progress
// tunable, so the test sees Wait blocked, then released.
func TestZpoolWait(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	p, devs := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Mirror, Width: 2}, 2, gib)
	h.writeRandom(t, "/"+p.String()+"/f", 8)
	const tun = "/sys/module/zfs/parameters/zfs_scan_suspend_progress"
	suspend := func(on bool) {
		v := "0"
		if on {
			v = "1"
		}
		h.sh(t, `echo "$1" > "$2"`, v, tun)
	}
	t.Cleanup(func() { suspend(false) })

	waitBlocked := func(a zfsexec.WaitActivity, start func()) zfsexec.PoolStatus {
		t.Helper()
		suspend(true)
		start()
		type res struct {
			st  zfsexec.PoolStatus
			err error
		}
		ch := make(chan res, 1)
		go func() {
			st, err := h.zpool.Wait(ctx, p, a, time.Second)
			ch <- res{st, err}
		}()
		select {
		case r := <-ch:
			t.Fatalf("zpool wait -t %s returned while the %s was suspended: %+v %v", a, a, r.st.Scan, r.err)
		case <-time.After(5 * time.Second):
		}
		st, err := h.zpool.Status(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Scan.InProgress() || string(st.Scan.Function) != string(a) {
			t.Fatalf("status while suspended: scan %+v, want %s in progress", st.Scan, a)
		}
		suspend(false)
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.st
		case <-time.After(5 * time.Minute):
			t.Fatalf("zpool wait -t %s did not return", a)
		}
		return zfsexec.PoolStatus{}
	}

	newDev := h.attachDisks(t, 1, gib)[0]
	st := waitBlocked(zfsexec.WaitResilver, func() {
		if err := h.zpool.Replace(ctx, p, devs[0], newDev, true); err != nil {
			t.Fatal(err)
		}
	})
	if st.Scan.Function != zfsexec.ScanResilver || st.Scan.State != zfsexec.ScanStateFinished || !st.Healthy() {
		t.Fatalf("after resilver: scan %+v healthy=%v", st.Scan, st.Healthy())
	}
	var names []string
	st.Walk(func(v *zfsexec.Vdev) { names = append(names, v.Name) })
	joined := strings.Join(names, " ")
	if strings.Contains(joined, "replacing") || !strings.Contains(joined, strings.TrimPrefix(newDev.String(), "/dev/disk/by-id/")) {
		t.Fatalf("vdevs after resilver: %s", joined)
	}

	st = waitBlocked(zfsexec.WaitScrub, func() {
		if err := h.zpool.Scrub(ctx, p); err != nil {
			t.Fatal(err)
		}
	})
	if st.Scan.Function != zfsexec.ScanScrub || st.Scan.State != zfsexec.ScanStateFinished || st.Scan.Errors != 0 {
		t.Fatalf("after scrub: scan %+v", st.Scan)
	}
}

// LUKS on the VM's virtio disks with the key on stdin only, a mirror pool on
// the opened mapper devices, close/reopen/import, and a wrong key refused.
func TestLUKSPool(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 15*time.Minute)
	devs := h.attachDisks(t, 2, gib)
	key := []byte("luks-" + randHex(16))
	for _, d := range devs {
		for _, a := range [][]string{zfsexec.LuksFormatArgv(d), zfsexec.OpenArgv(d, "x")} {
			if strings.Contains(strings.Join(a, " "), string(key)) {
				t.Fatalf("key in argv %q", a)
			}
		}
	}
	var names []zfsname.MapperName
	var mapped []zfsname.Device
	for i, d := range devs {
		if err := h.luks.LuksFormat(ctx, d, key); err != nil {
			t.Fatal(err)
		}
		if ok, err := h.luks.IsLuks(ctx, d); err != nil || !ok {
			t.Fatalf("IsLuks(%s) = %v, %v", d, ok, err)
		}
		name, err := zfsname.ParseMapperName("zc-" + randHex(3) + "-" + string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.luks.Open(ctx, d, name, key); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		mapped = append(mapped, name.Device())
	}
	closeAll := func() {
		for _, n := range names {
			if err := h.luks.Close(ctx, n); err != nil {
				t.Errorf("close %s: %v", n, err)
			}
		}
	}
	p, err := zfsname.ParsePool("vl" + randHex(4))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.zpool.Create(ctx, p, zfsexec.Layout{Redundancy: zfsexec.Mirror, Width: 2}, mapped, zfsexec.PoolCreateOptions{Force: true}); err != nil {
		closeAll()
		t.Fatal(err)
	}
	cleaned := false
	t.Cleanup(func() {
		if !cleaned {
			h.destroyPool(t, p)
			closeAll()
		}
	})
	sum := h.writeRandom(t, "/"+p.String()+"/f", 4)
	// The disks hold ciphertext: no ZFS label is visible on the raw device.
	if out, _ := h.shErr(`zdb -l "$1" 2>&1 | head -5`, devs[0].String()); strings.Contains(out, "name: '"+p.String()+"'") {
		t.Fatalf("ZFS label readable on the raw LUKS device: %s", out)
	}
	if err := h.zpool.Export(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	closeAll()
	cleaned = true

	if err := h.luks.Open(ctx, devs[0], names[0], []byte("wrong-"+randHex(16))); err == nil {
		_ = h.luks.Close(ctx, names[0])
		t.Fatal("opened with a wrong key")
	}
	for i, d := range devs {
		if err := h.luks.Open(ctx, d, names[i], key); err != nil {
			t.Fatal(err)
		}
	}
	cleaned = false
	if err := h.zpool.Import(ctx, p, zfsexec.ImportOptions{Dirs: []zfsname.Device{must(zfsname.ParseDevice("/dev/mapper"))}}); err != nil {
		t.Fatal(err)
	}
	st, err := h.zpool.Status(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Healthy() {
		t.Fatalf("imported LUKS pool not healthy: %+v", st)
	}
	if got := h.sha256(t, "/"+p.String()+"/f"); got != sum {
		t.Fatalf("data after LUKS reopen: %s, want %s", got, sum)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A hot-plugged disk (EBS attach) appears by its serial, can carry a pool,
// and disappears on detach once the pool is exported.
func TestHotPlugDiskBySerial(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	serial := newSerial()
	if err := h.vm.AttachDisk(serial, gib); err != nil {
		t.Fatal(err)
	}
	detached := false
	t.Cleanup(func() {
		if !detached {
			_ = h.vm.DetachDisk(serial)
		}
	})
	dev := must(zfsname.ParseDevice(vmhost.DevicePath(serial)))
	h.waitDevice(t, dev.String(), true)
	if got := strings.TrimSpace(h.sh(t, `cat /sys/block/$(basename $(readlink -f "$1"))/serial`, dev.String())); got != serial {
		t.Fatalf("guest serial %q, want %q", got, serial)
	}
	p := h.poolOn(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, []zfsname.Device{dev})
	st, err := h.zpool.Status(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	st.Walk(func(v *zfsexec.Vdev) { found = found || strings.Contains(v.Name, serial) })
	if !found {
		t.Fatalf("pool status does not name the disk by serial: %+v", st.Vdevs)
	}
	if err := h.zpool.Export(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	if err := h.vm.DetachDisk(serial); err != nil {
		t.Fatal(err)
	}
	detached = true
	h.waitDevice(t, dev.String(), false)
}

// zfsexec's parsers fed live OpenZFS 2.3 output: zpool status/list/get,
// zfs get, snapshots, holds, send estimates, import candidates.
func TestParsersLive(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 10*time.Minute)
	p, devs := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.RaidZ1, Width: 3}, 3, gib)
	st, err := h.zpool.Status(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != p.String() || st.State != "ONLINE" || !st.Healthy() || len(st.Vdevs) == 0 {
		t.Fatalf("status %+v", st)
	}
	var leaves []string
	st.Walk(func(v *zfsexec.Vdev) {
		if len(v.Children) == 0 {
			leaves = append(leaves, v.Name)
		}
	})
	if len(leaves) != 3 {
		t.Fatalf("leaves %v, want the 3 disks", leaves)
	}
	info, err := h.zpool.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Health != "ONLINE" || info.Size < 2*gib || info.Size > 3*gib+gib/2 {
		t.Fatalf("zpool list %+v", info)
	}
	ds := zfsname.MustDataset(p.String() + "/d")
	if err := h.zfs.Create(ctx, ds, zfsexec.CreateOptions{Props: zfsexec.MustProps("compression", "lz4", "user:zcloud", "test value")}); err != nil {
		t.Fatal(err)
	}
	props, err := h.zfs.Get(ctx, []zfsname.PropName{"compression", "user:zcloud", "used"}, ds)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]zfsexec.Property{}
	for _, pr := range props {
		got[pr.Property] = pr
	}
	if got["compression"].Value != "lz4" || got["compression"].Source != "local" || got["user:zcloud"].Value != "test value" {
		t.Fatalf("zfs get %+v", props)
	}
	h.writeRandom(t, "/"+ds.String()+"/f", 3)
	var snaps []zfsname.Snapshot
	for _, n := range []string{"2026-11-22T0000Z", "2026-11-22T0100Z"} {
		s, _ := ds.Snapshot(n)
		if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, s); err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, s)
	}
	list, err := h.zfs.ListSnapshots(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Snapshot != snaps[0] || list[1].Snapshot != snaps[1] ||
		list[0].GUID == 0 || list[0].CreateTXG >= list[1].CreateTXG || list[0].Creation == 0 {
		t.Fatalf("snapshots %+v", list)
	}
	// Several datasets in one atomic zfs snapshot share a txg.
	ds2 := zfsname.MustDataset(p.String() + "/d2")
	if err := h.zfs.Create(ctx, ds2, zfsexec.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m1, _ := ds.Snapshot("multi")
	m2, _ := ds2.Snapshot("multi")
	if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, m1, m2); err != nil {
		t.Fatal(err)
	}
	if a, b := h.prop(t, m1, "createtxg"), h.prop(t, m2, "createtxg"); a != b {
		t.Fatalf("atomic snapshots in txgs %s and %s", a, b)
	}
	tag := must(zfsname.ParseHoldTag("zcloud-test"))
	if err := h.zfs.Hold(ctx, tag, false, snaps[1]); err != nil {
		t.Fatal(err)
	}
	holds, err := h.zfs.Holds(ctx, snaps[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(holds) != 1 {
		t.Fatalf("holds %+v", holds)
	}
	if err := h.zfs.DestroySnapshot(ctx, snaps[1], false); !errors.Is(err, zfsexec.ErrBusy) {
		t.Fatalf("destroy held snapshot: want ErrBusy, got %v", err)
	}
	if err := h.zfs.Release(ctx, tag, false, snaps[1]); err != nil {
		t.Fatal(err)
	}
	n, err := h.zfs.EstimateSize(ctx, snaps[0], zfsexec.SendOptions{})
	if err != nil || n < 3<<20 || n > 4<<20 {
		t.Fatalf("send estimate %d, %v (want ~3 MiB)", n, err)
	}
	missing := must(zfsname.ParseSnapshot(p.String() + "/nope@x"))
	if _, err := h.zfs.EstimateSize(ctx, missing, zfsexec.SendOptions{}); !errors.Is(err, zfsexec.ErrDatasetNotFound) {
		t.Fatalf("estimate of a missing snapshot: want ErrDatasetNotFound, got %v", err)
	}
	if err := h.zfs.Receive(ctx, zfsname.MustDataset(p.String()+"/empty"), zfsexec.ReceiveOptions{}, strings.NewReader("")); !errors.Is(err, zfsexec.ErrEmptyStream) {
		t.Fatalf("receive of an empty stream: want ErrEmptyStream, got %v", err)
	}
	if err := h.zpool.Export(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	cands, err := h.zpool.ImportCandidates(ctx, zfsexec.ImportOptions{Dirs: []zfsname.Device{must(zfsname.ParseDevice("/dev/disk/by-id"))}})
	if err != nil {
		t.Fatal(err)
	}
	var cand *zfsexec.ImportCandidate
	for i := range cands {
		if cands[i].Name == p.String() {
			cand = &cands[i]
		}
	}
	if cand == nil || cand.ID == 0 || cand.State != "ONLINE" {
		t.Fatalf("import candidates %+v", cands)
	}
	if err := h.zpool.Import(ctx, p, zfsexec.ImportOptions{Dirs: []zfsname.Device{must(zfsname.ParseDevice("/dev/disk/by-id"))}}); err != nil {
		t.Fatal(err)
	}
	_ = devs
}
