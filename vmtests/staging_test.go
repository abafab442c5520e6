package vmtests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/retention"
	"zcloud/workflows"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// File-level encrypted staging, end to end on OpenZFS 2.3 (which has zfs
// diff) through a real Temporal server: the worker runs in the guest (it
// owns the pool) and reaches the dev server on this host through QEMU's
// 10.0.2.2. A full run with the worker SIGKILLed twice at the staging gate,
// then an incremental covering every kind of diff with the worker killed
// again; the decrypted staging copy must equal the source snapshot (a find
// listing and the SHA-256 of every file). Only the public key is ever on
// the guest: the private key reaches restore and verify on SSH stdin.
func TestStagingAcceptance(t *testing.T) {
	h := vmHost(t)
	ctx := ctxT(t, 25*time.Minute)
	bin := h.installZcloud(t)
	pool, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 3*gib)
	src := zfsname.MustDataset(pool.String() + "/src")
	stg := zfsname.MustDataset(pool.String() + "/stg")
	rst := zfsname.MustDataset(pool.String() + "/rst")
	for _, d := range []zfsname.Dataset{src, stg, rst} {
		if err := h.zfs.Create(ctx, d, zfsexec.CreateOptions{Props: zfsexec.MustProps("compression", "off")}); err != nil {
			t.Fatal(err)
		}
	}
	m := "/" + src.String()

	// The first snapshot: nested directories, an empty directory, a 0-byte
	// and a 200 MiB file, a sparse file, hard links, symlinks (one
	// dangling), names with spaces, unicode, a newline, a fifo.
	h.sh(t, `set -e; cd "$1"
mkdir -p dir1/sub/deeper empty-dir links
echo a > dir1/a; echo inner > dir1/sub/inner.txt; echo deep > dir1/sub/deeper/d
: > zero
dd if=/dev/urandom of=big bs=1M count=200 2>/dev/null
truncate -s 64M sparse; dd if=/dev/urandom of=sparse bs=1M count=1 seek=10 conv=notrunc 2>/dev/null
echo linked > hl1; ln hl1 links/hl2
ln -s dir1/a link1; ln -s /nonexistent dangling
echo sp > "with space"; echo u > "$(printf 'caf\303\251 \344\270\255')"; echo nl > "$(printf 'new\nline')"
echo f > fileToDir; dd if=/dev/urandom of=mod.bin bs=1M count=2 2>/dev/null; echo g > gone
chmod 750 dir1/a; mkfifo fifo; sync`, m)
	snap := func(name string) {
		s, _ := src.Snapshot(name)
		if err := h.zfs.Snapshot(ctx, false, zfsexec.Props{}, s); err != nil {
			t.Fatal(err)
		}
	}
	snap("s1")

	// Keys: only the recipient goes into the guest's config.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	secret := id.String()

	tmp, err := testenv.StartTemporal(filepath.Join(t.TempDir(), "temporal.log"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tmp.Stop)
	port := tmp.HostPort[strings.LastIndex(tmp.HostPort, ":")+1:]
	tq := "staging-vm-" + randHex(4)
	// Names encrypted too, staged again after each policy snapshot; the
	// names key lives in the worker's key source (it is not the private
	// key: the worker holds the plaintext anyway).
	cfg := fmt.Sprintf(`temporal: {address: "10.0.2.2:%s", namespace: default, task_queue: %s}
log: {level: info, format: console}
keys: {dir: /tmp/sg-keys}
policies:
  - {dataset: %s, schedule: 1h, hourly: 24, max_destroy_count: 5, max_destroy_percent: 50}
staging:
  - source: %s
    dataset: %s
    recipients: [%s]
    parallel: 2
    names: encrypt
    names_key: stg-names
    after_snapshot: true
`, port, tq, src, src, stg, id.Recipient())
	h.sh(t, `mkdir -p /tmp/sg-gate /tmp/sg-keys && chmod 700 /tmp/sg-keys && rm -f /tmp/sg-gate/* && printf '%s' "$1" > /tmp/sg.yaml && printf '%s\n' "$2" > /tmp/sg-keys/stg-names && chmod 600 /tmp/sg-keys/stg-names`, cfg, randHex(32))
	if out := h.sh(t, `cat /tmp/sg.yaml`); strings.Contains(out, "AGE-SECRET-KEY") {
		t.Fatal("the private key is in the worker's config")
	}
	cl, err := client.Dial(client.Options{HostPort: tmp.HostPort, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	startWorker := func() {
		h.sh(t, `cd /tmp && ZCLOUD_TEST_GATE_DIR=/tmp/sg-gate setsid "$1" worker --config /tmp/sg.yaml >>/tmp/sg-worker.log 2>&1 </dev/null & echo $! > /tmp/sg-worker.pid`, bin)
	}
	killWorker := func() {
		h.sh(t, `p=$(cat /tmp/sg-worker.pid); kill -9 "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.1; done`)
	}
	t.Cleanup(func() { h.shErr(`kill -9 $(cat /tmp/sg-worker.pid) 2>/dev/null; true`) })
	point := contract.StagingGatePoint
	arm := func(n int) {
		h.sh(t, `rm -f /tmp/sg-gate/"$1".held /tmp/sg-gate/"$1".release && echo "$2" > /tmp/sg-gate/"$1".arm.tmp && mv /tmp/sg-gate/"$1".arm.tmp /tmp/sg-gate/"$1".arm`, point, fmt.Sprint(n))
	}
	// waitHeld waits until a worker holds at the gate; it fails at once
	// when the workflow ended instead (the limit is for a hung run, not
	// what the test waits on).
	waitHeld := func(run client.WorkflowRun) {
		t.Helper()
		for i := 0; i < 1500; i++ {
			if _, err := h.shErr(`test -e /tmp/sg-gate/"$1".held`, point); err == nil {
				return
			}
			d, err := cl.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
			if err == nil && d.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				var st workflows.StagingStatus
				t.Fatalf("the workflow ended (%s, %v) before a worker reached the staging gate; worker log:\n%s",
					d.WorkflowExecutionInfo.Status, run.Get(ctx, &st), h.sh(t, `tail -30 /tmp/sg-worker.log`))
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("no worker reached the staging gate; worker log:\n%s", h.sh(t, `tail -30 /tmp/sg-worker.log`))
	}
	runStaging := func(wfID string, kills []int) workflows.StagingStatus {
		t.Helper()
		if len(kills) > 0 {
			arm(kills[0])
		}
		startWorker()
		run, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: tq}, workflows.StagingName,
			workflows.StagingInput{Source: src.String(), Dataset: stg.String(), HeartbeatTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for i := range kills {
			waitHeld(run)
			killWorker() // SIGKILL in the middle of staging
			if i+1 < len(kills) {
				arm(kills[i+1])
			}
			startWorker()
		}
		var st workflows.StagingStatus
		if err := run.Get(ctx, &st); err != nil {
			t.Fatalf("staging workflow: %v; worker log:\n%s", err, h.sh(t, `tail -30 /tmp/sg-worker.log`))
		}
		killWorker()
		t.Logf("%s: plan %+v report %+v", wfID, *st.Plan, *st.Report)
		return st
	}

	st := runStaging("staging-vm-full", []int{4, 2})
	if st.Plan.Action != contract.StagingFull || st.Plan.To != "s1" {
		t.Fatalf("first run plan %+v", st.Plan)
	}
	if len(st.Report.Skipped) != 1 || st.Report.Skipped[0].Path != "fifo" {
		t.Errorf("the fifo is not reported as skipped: %+v", st.Report.Skipped)
	}
	// Every staged name is encrypted.
	if names := h.sh(t, `cd "$1" && find . -path ./.zcloud-staging -prune -o -print`, "/"+stg.String()); strings.Contains(names, "big") ||
		strings.Contains(names, "dir1") || strings.Contains(names, "sparse") || strings.Count(names, "\n") < 10 {
		t.Fatalf("staged names are not encrypted:\n%s", names)
	}
	restoreAndCompare := func(snapName string) {
		t.Helper()
		out := "/" + rst.String() + "/" + snapName
		res, err := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{bin, "staging", "restore", "/" + stg.String(), out, "--identity", "-"},
			Stdin: strings.NewReader(secret + "\n")})
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		t.Logf("%s", res.Stdout)
		list := `cd "$1" && { find . ! -type p ! -type d ! -type f -printf '%y %m %s %P -> %l\n'; find . -type f -printf '%y %m %s %T@ %P\n'; find . -type d -printf '%y %m %P\n'; } | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum`
		want := h.sh(t, list, m+"/.zfs/snapshot/"+snapName)
		got := h.sh(t, list, out)
		if got != want {
			t.Fatalf("decrypted staging copy differs from %s@%s:\nrestored:\n%s\nsource:\n%s", src, snapName, got, want)
		}
		if !strings.Contains(want, "big") || !strings.Contains(want, "sparse") {
			t.Fatalf("listing misses files:\n%s", want)
		}
		res, err = h.r.Run(ctx, zfsexec.Cmd{Argv: []string{bin, "staging", "verify", "/" + stg.String(), m, "--identity", "-"},
			Stdin: strings.NewReader(secret + "\n")})
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, res.Stdout)
		}
		t.Logf("verify: %s", res.Stdout)
	}
	restoreAndCompare("s1")

	// The change set: a directory renamed with its contents (and a file in
	// it changed), a file replaced by a directory, the second name of a
	// hard link removed, a file modified in place, a removal, an addition,
	// a symlink re-pointed.
	h.sh(t, `set -e; cd "$1"
mv dir1 dir1renamed; echo changed > dir1renamed/sub/inner.txt
rm fileToDir; mkdir fileToDir; echo in > fileToDir/x
rm links/hl2
dd if=/dev/urandom of=mod.bin bs=4k count=1 seek=100 conv=notrunc 2>/dev/null
rm gone; echo new > "$(printf 'new file \303\274')"
ln -sfn dir1renamed/a link1; sync`, m)
	snap("s2")
	d := h.sh(t, `zfs diff -FH "$1@s1" "$1@s2"`, src.String())
	t.Logf("zfs diff:\n%s", d)
	st = runStaging("staging-vm-incremental", []int{2, 1})
	if st.Plan.Action != contract.StagingIncremental || st.Plan.From != "s1" || st.Plan.To != "s2" {
		t.Fatalf("second run plan %+v", st.Plan)
	}
	if st.Report.Bytes >= 200<<20 {
		t.Errorf("the incremental re-encrypted %d bytes: more than the change", st.Report.Bytes)
	}
	restoreAndCompare("s2")

	// The staged snapshot is held, the staging dataset has a snapshot per
	// run, and the private key is nowhere on the guest.
	if holds := h.sh(t, `zfs holds -H "$1@s2"; echo; zfs holds -H "$1@s1"`, src.String()); !strings.Contains(holds, "zcloud-staging") || strings.Count(holds, "zcloud-staging") != 1 {
		t.Errorf("holds: %q", holds)
	}
	if snaps := h.sh(t, `zfs list -H -o name -t snapshot "$1"`, stg.String()); !strings.Contains(snaps, "@s1") || !strings.Contains(snaps, "@s2") {
		t.Errorf("staging dataset snapshots: %q", snaps)
	}
	if out, _ := h.shErr(`grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$1" / 2>/dev/null; true`, secret); strings.TrimSpace(out) != "" {
		t.Fatalf("the private key is on the worker host: %s", out)
	}

	// After a snapshot-policy tick: the tick's snapshot starts the staging
	// (after_snapshot), which stages the one new file.
	h.sh(t, `echo tick > "$1/after tick"; sync`, m)
	startWorker()
	prun, err := cl.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "staging-vm-policy", TaskQueue: tq}, workflows.SnapshotPolicyName,
		workflows.PolicyInput{Dataset: src.String(), Policy: retention.Policy{Hourly: 24}, MaxDestroyCount: 5, MaxDestroyPercent: 50, StagingDataset: stg.String()})
	if err != nil {
		t.Fatal(err)
	}
	var pst workflows.PolicyStatus
	if err := prun.Get(ctx, &pst); err != nil {
		t.Fatalf("policy tick: %v", err)
	}
	if pst.Snapshot == "" || pst.StagingWorkflow != workflows.StagingWorkflowID(src.String()) {
		t.Fatalf("the policy tick took no snapshot or started no staging: %+v", pst)
	}
	var tst workflows.StagingStatus
	if err := cl.GetWorkflow(ctx, pst.StagingWorkflow, pst.StagingRunID).Get(ctx, &tst); err != nil {
		t.Fatalf("staging after the tick: %v; worker log:\n%s", err, h.sh(t, `tail -30 /tmp/sg-worker.log`))
	}
	killWorker()
	tickSnap := pst.Snapshot[strings.Index(pst.Snapshot, "@")+1:]
	if tst.Plan.Action != contract.StagingIncremental || tst.Plan.From != "s2" || tst.Plan.To != tickSnap || tst.Report.Files != 1 {
		t.Fatalf("staging after the tick: plan %+v report %+v", tst.Plan, tst.Report)
	}
	res, err := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{bin, "staging", "restore", "/" + stg.String(), "/tmp/sg-one", "--path", "after tick", "--identity", "-"},
		Stdin: strings.NewReader(secret + "\n")})
	if err != nil {
		t.Fatalf("restore one file: %v", err)
	}
	if got := h.sh(t, `cat /tmp/sg-one; zfs list -H -o name -t snapshot "$1" | grep -c "@$2"`, stg.String(), tickSnap); got != "tick\n1\n" {
		t.Fatalf("after the tick: restored file and staging snapshot: %q (%s)", got, res.Stdout)
	}
}
