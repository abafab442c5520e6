package zfsexec

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"zcloud/zfsname"
)

// TestLivePoolLifecycle: raidz create, replace + wait for resilver, scrub +
// wait, list, export, import candidates, import.
func TestLivePoolLifecycle(t *testing.T) {
	r, caps := liveLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, devs, dir := filePool(t, r, caps, Layout{RaidZ1, 3}, 3, 128<<20)
	zp := Zpool{R: r, Caps: caps}
	writeTree(t, "/"+p.String(), map[string]int{"x/a": 8 << 20, "x/b": 4 << 20})

	st, err := zp.Status(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != p.String() || !st.Healthy() || len(st.Vdevs) != 1 || len(st.Vdevs[0].Children) != 1 ||
		len(st.Vdevs[0].Children[0].Children) != 3 {
		t.Fatalf("fresh pool status: %+v", st)
	}

	if err := zp.Replace(ctx, p, devs[0], devs[3], false); err != nil {
		t.Fatal(err)
	}
	st, err = zp.Wait(ctx, p, WaitResilver, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Healthy() || st.Scan.Function != ScanResilver || st.Scan.State != ScanStateFinished {
		t.Fatalf("after resilver: healthy=%v scan=%+v", st.Healthy(), st.Scan)
	}
	names := map[string]bool{}
	st.Walk(func(v *Vdev) { names[v.Name] = true })
	if names[devs[0].String()] || !names[devs[3].String()] {
		t.Errorf("replace did not swap devices: %v", names)
	}

	if err := zp.Scrub(ctx, p); err != nil {
		t.Fatal(err)
	}
	st, err = zp.Wait(ctx, p, WaitScrub, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if st.Scan.Function != ScanScrub || st.Scan.State != ScanStateFinished || st.Scan.Errors != 0 || !st.Healthy() {
		t.Fatalf("after scrub: %+v", st.Scan)
	}

	info, err := zp.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Health != "ONLINE" || info.Size < 300<<20 || info.Alloc < 12<<20 || info.Free == 0 {
		t.Errorf("list: %+v", info)
	}
	if err := zp.OnlineExpand(ctx, p, devs[3]); caps.OnlineExpand && err != nil || !caps.OnlineExpand && !IsUnsupported(err) {
		t.Errorf("online -e on %s: %v", caps, err)
	}

	if err := zp.Export(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	dirDev, err := zfsname.ParseDevice(dir)
	if err != nil {
		t.Fatal(err)
	}
	emptyDev, _ := zfsname.ParseDevice(t.TempDir())
	if none, err := zp.ImportCandidates(ctx, ImportOptions{Dirs: []zfsname.Device{emptyDev}}); err != nil || len(none) != 0 {
		t.Fatalf("a directory without pools: %+v, %v", none, err)
	}
	cands, err := zp.ImportCandidates(ctx, ImportOptions{Dirs: []zfsname.Device{dirDev}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cands) != 1 || cands[0].Name != p.String() || cands[0].ID == 0 || cands[0].State != "ONLINE" {
		t.Fatalf("candidates: %+v", cands)
	}
	if err := zp.Import(ctx, p, ImportOptions{Dirs: []zfsname.Device{dirDev}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/" + p.String() + "/x/a"); err != nil {
		t.Errorf("data after import: %v", err)
	}
	if _, err := zp.Status(ctx, mustPool(t, "ztnosuchpool")); !errors.Is(err, ErrDatasetNotFound) {
		t.Errorf("status of missing pool: %v, want ErrDatasetNotFound", err)
	}
}
