package vmtests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// replEnv runs the replication activity against the VM's OpenZFS on both
// ends: the source through the worker's local runner (the test seam
// Activities.Local, here an SSH runner to the VM, since zfs-fuse on this
// host cannot hold an encrypted dataset or resume) and the target "vm", a
// static target reached over SSH like any other.
type replEnv struct {
	h    *host
	a    *activities.Activities
	env  *testsuite.TestActivityEnvironment
	logs *observer.ObservedLogs
}

func (h *host) replEnv(t *testing.T) *replEnv {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
targets:
  vm:
    kind: static
    transport: ssh
    ssh: {host: %s, port: %d, user: %s, identity_file: %q, host_key: %q}
`, h.vm.Host, h.vm.Port, h.vm.User, h.vm.KeyPath, h.vm.HostKey)))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(core)
	signer, err := zfsexec.LoadSigner(h.vm.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	local, err := zfsexec.NewSSH(zfsexec.SSHConfig{Host: h.vm.Host, Port: h.vm.Port, User: h.vm.User, Signer: signer, HostKey: h.vm.HostKey}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	a := &activities.Activities{Config: cfg, Log: log, Local: local}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	env.SetTestTimeout(5 * time.Minute)
	return &replEnv{h: h, a: a, env: env, logs: logs}
}

func (e *replEnv) send(t *testing.T, req contract.SendRequest) (contract.SendReport, error) {
	t.Helper()
	req.Target = "vm"
	// The activity sends only what the configuration replicates (a workflow
	// input is a request, not an authority): configure this one first.
	e.a.Config.Replications = append(e.a.Config.Replications, config.Replication{
		Source: req.Source.String(), Target: req.Target, TargetDataset: req.TargetDataset.String(),
		Raw: req.Raw, AllowPlaintextOnTarget: req.AllowPlaintext,
	})
	v, err := e.env.ExecuteActivity(e.a.SendSnapshots, req)
	if err != nil {
		return contract.SendReport{}, err
	}
	var rep contract.SendReport
	if err := v.Get(&rep); err != nil {
		t.Fatal(err)
	}
	return rep, nil
}

// argvs are the zfs command lines the activity ran (both ends), in order.
func (e *replEnv) argvs() []string {
	var out []string
	for _, l := range e.logs.FilterMessage("run").All() {
		for _, f := range l.Context {
			if f.Key == "argv" {
				out = append(out, fmt.Sprint(f.Interface))
			}
		}
	}
	return out
}

func snap(t *testing.T, d zfsname.Dataset, name string) zfsname.Snapshot {
	t.Helper()
	s, err := d.Snapshot(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func child(t *testing.T, p zfsname.Pool, name string) zfsname.Dataset {
	t.Helper()
	d, err := zfsname.ParseDataset(p.String() + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A resume token whose snapshot was destroyed on the source: OpenZFS's
// real "used in the initial send no longer exists" makes the activity
// discard the partial state (zfs receive -A) and send a fresh incremental
// in the same attempt, and the target ends with the source's data.
func TestStaleResumeTokenFallsBackToAFreshIncremental(t *testing.T) {
	h := vmHost(t)
	e := h.replEnv(t)
	ctx := ctxT(t, 5*time.Minute)
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 1<<30)
	src, dst := child(t, p, "src"), child(t, p, "dst")
	if err := h.zfs.Create(ctx, src, zfsexec.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.writeRandom(t, "/"+src.String()+"/a", 4)
	a, b, c := snap(t, src, "a"), snap(t, src, "b"), snap(t, src, "c")
	h.sh(t, `zfs snapshot "$1"`, a.String())
	if _, err := e.send(t, contract.SendRequest{Source: src, Snapshot: a, TargetDataset: dst}); err != nil {
		t.Fatal(err)
	}
	h.writeRandom(t, "/"+src.String()+"/b", 8)
	h.sh(t, `zfs snapshot "$1"`, b.String())
	// A session interrupted in the middle of a..b leaves a token on the target.
	from := zfsexec.FromSnapshot(a)
	h.pipe(ctx, b, zfsexec.SendOptions{From: from}, dst, zfsexec.ReceiveOptions{Resumable: true, Force: true}, 3<<20, nil)
	if tok := h.prop(t, dst, "receive_resume_token"); tok == "-" || tok == "" {
		t.Fatal("no resume token after the cut")
	}
	// b is pruned on the source before the next session, which sends c.
	h.sh(t, `zfs destroy "$1"`, b.String())
	want := h.writeRandom(t, "/"+src.String()+"/c", 2)
	h.sh(t, `zfs snapshot "$1"`, c.String())

	rep, err := e.send(t, contract.SendRequest{Source: src, Snapshot: c, TargetDataset: dst})
	if err != nil {
		t.Fatalf("send after the stale token: %v", err)
	}
	if rep.Full || rep.Resumed || rep.From != a.String() {
		t.Errorf("report %+v: want a fresh incremental from %s", rep, a)
	}
	if n := e.logs.FilterMessageSnippet("resume state is stale").Len(); n != 1 {
		t.Errorf("%d stale-state warnings, want 1", n)
	}
	all := strings.Join(e.argvs(), "\n")
	if !strings.Contains(all, "[zfs send -t ") || !strings.Contains(all, "[zfs receive -A "+dst.String()+"]") {
		t.Errorf("the activity should have tried the token, then aborted; ran:\n%s", all)
	}
	if tok := h.prop(t, dst, "receive_resume_token"); tok != "-" {
		t.Errorf("token left: %q", tok)
	}
	if got := h.sha256(t, "/"+dst.String()+"/c"); got != want {
		t.Errorf("target file c %s, source %s", got, want)
	}
}

// A natively encrypted source is sent raw by default: the target stores the
// ciphertext, its key stays unavailable there (nothing loads it), and the
// data is the source's once the key is loaded (here, by the test only).
// With allow_plaintext_on_target the same dataset goes decrypted and the
// report says so.
func TestEncryptedSourceIsSentRawByDefault(t *testing.T) {
	h := vmHost(t)
	e := h.replEnv(t)
	ctx := ctxT(t, 5*time.Minute)
	srcPool, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 1<<30)
	dstPool, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 1<<30)
	key := "vm-test-passphrase-" + randHex(8)
	enc := child(t, srcPool, "enc")
	h.createEncrypted(t, enc, key)
	want := h.writeRandom(t, "/"+enc.String()+"/f", 4)
	s1 := snap(t, enc, "s1")
	h.sh(t, `zfs snapshot "$1"`, s1.String())

	dst := child(t, dstPool, "enc")
	rep, err := e.send(t, contract.SendRequest{Source: enc, Snapshot: s1, TargetDataset: dst})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != contract.ModeRaw {
		t.Errorf("mode %q, want raw", rep.Mode)
	}
	if !strings.Contains(strings.Join(e.argvs(), "\n"), "[zfs send -w ") {
		t.Errorf("no raw send in:\n%s", strings.Join(e.argvs(), "\n"))
	}
	if ks := h.prop(t, dst, "keystatus"); ks != "unavailable" {
		t.Fatalf("target keystatus %q, want unavailable", ks)
	}
	if encp := h.prop(t, dst, "encryption"); encp != "aes-256-gcm" {
		t.Errorf("target encryption %q", encp)
	}
	if m := h.prop(t, dst, "mounted"); m != "no" {
		t.Errorf("target mounted %q without its key", m)
	}
	// Only the test loads the key, to check the bytes.
	if _, err := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{"zfs", "load-key", dst.String()}, Stdin: strings.NewReader(key + "\n")}); err != nil {
		t.Fatal(err)
	}
	h.sh(t, `zfs mount "$1"`, dst.String())
	if got := h.sha256(t, "/"+dst.String()+"/f"); got != want {
		t.Errorf("decrypted target %s, source %s", got, want)
	}

	// Explicitly allowed: decrypted on the way, plaintext on the target.
	plain := child(t, dstPool, "plain")
	rep, err = e.send(t, contract.SendRequest{Source: enc, Snapshot: s1, TargetDataset: plain, AllowPlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != contract.ModePlaintext || h.prop(t, plain, "encryption") != "off" {
		t.Errorf("allowed plaintext: mode %q, target encryption %q", rep.Mode, h.prop(t, plain, "encryption"))
	}
	if e.logs.FilterMessageSnippet("the target stores plaintext").Len() != 1 {
		t.Error("the plaintext send was not reported")
	}
	// An unencrypted source stays a plain send.
	pl := child(t, srcPool, "plain")
	if err := h.zfs.Create(ctx, pl, zfsexec.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ps := snap(t, pl, "s1")
	h.sh(t, `zfs snapshot "$1"`, ps.String())
	if rep, err := e.send(t, contract.SendRequest{Source: pl, Snapshot: ps, TargetDataset: child(t, dstPool, "plainsrc")}); err != nil || rep.Mode != contract.ModePlain {
		t.Errorf("plain source: %+v %v", rep, err)
	}
}

// A successful send leaves a cursor bookmark of the sent snapshot on the
// source (and drops the previous one). When a prune destroys the base
// snapshot, the next send goes incremental from the bookmark (-i #cursor to
// the first snapshot after it, then -I for the rest) instead of failing
// with "no common snapshot" or resending everything, and the target ends
// byte-identical with every snapshot. For a plain source, and for a
// natively encrypted one sent raw (-w: the bookmark carries what a raw
// incremental needs).
func TestPrunedBaseSendsIncrementalFromBookmark(t *testing.T) {
	h := vmHost(t)
	e := h.replEnv(t)
	ctx := ctxT(t, 10*time.Minute)
	p, _ := h.newPool(t, zfsexec.Layout{Redundancy: zfsexec.Stripe}, 1, 1<<30)
	for _, raw := range []bool{false, true} {
		name, flag, key := "plain", "", ""
		if raw {
			name, flag, key = "raw", "-w ", "vm-bookmark-"+randHex(8)
		}
		t.Run(name, func(t *testing.T) {
			src, dst := child(t, p, name+"src"), child(t, p, name+"dst")
			if raw {
				h.createEncrypted(t, src, key)
			} else if err := h.zfs.Create(ctx, src, zfsexec.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			bookmarks := func() string {
				return strings.TrimSpace(h.sh(t, `zfs list -H -o name -t bookmark "$1"`, src.String()))
			}
			sums := map[string]string{"f1": h.writeRandom(t, "/"+src.String()+"/f1", 4)}
			a, b, c, d := snap(t, src, "a"), snap(t, src, "b"), snap(t, src, "c"), snap(t, src, "d")
			h.sh(t, `zfs snapshot "$1"`, a.String())
			if _, err := e.send(t, contract.SendRequest{Source: src, Snapshot: a, TargetDataset: dst}); err != nil {
				t.Fatal(err)
			}
			if got := bookmarks(); got != src.String()+"#zcloud-vm:a" {
				t.Fatalf("bookmarks after the first send: %q", got)
			}
			sums["f2"] = h.writeRandom(t, "/"+src.String()+"/f2", 1)
			h.sh(t, `zfs snapshot "$1"`, b.String())
			if _, err := e.send(t, contract.SendRequest{Source: src, Snapshot: b, TargetDataset: dst}); err != nil {
				t.Fatal(err)
			}
			if got := bookmarks(); got != src.String()+"#zcloud-vm:b" {
				t.Fatalf("bookmarks after the second send (the old cursor should be gone): %q", got)
			}

			// A prune takes a and b, the target's newest; two snapshots follow.
			h.sh(t, `zfs destroy "$1" && zfs destroy "$2"`, a.String(), b.String())
			sums["f3"] = h.writeRandom(t, "/"+src.String()+"/f3", 1)
			h.sh(t, `zfs snapshot "$1"`, c.String())
			sums["f4"] = h.writeRandom(t, "/"+src.String()+"/f4", 1)
			h.sh(t, `zfs snapshot "$1"`, d.String())
			before := len(e.argvs())
			rep, err := e.send(t, contract.SendRequest{Source: src, Snapshot: d, TargetDataset: dst})
			if err != nil {
				t.Fatalf("send after the prune: %v", err)
			}
			sends := []string{}
			for _, a := range e.argvs()[before:] {
				if strings.HasPrefix(a, "[zfs send ") && !strings.Contains(a, " -nvP ") {
					sends = append(sends, a)
				}
			}
			want := []string{
				"[zfs send " + flag + "-i " + src.String() + "#zcloud-vm:b " + c.String() + "]",
				"[zfs send " + flag + "-I " + c.String() + " " + d.String() + "]",
			}
			if strings.Join(sends, "\n") != strings.Join(want, "\n") {
				t.Errorf("sends:\n%s\nwant:\n%s", strings.Join(sends, "\n"), strings.Join(want, "\n"))
			}
			if rep.Full || rep.From != src.String()+"#zcloud-vm:b" || rep.Bytes > 4<<20 {
				t.Errorf("report %+v: want an incremental of about 2 MiB from the bookmark", rep)
			}
			if got := bookmarks(); got != src.String()+"#zcloud-vm:d" {
				t.Errorf("bookmarks after the send from the bookmark: %q", got)
			}
			if got := h.sh(t, `zfs list -H -o name -t snapshot -s createtxg "$1"`, dst.String()); got != strings.Join([]string{
				dst.String() + "@a", dst.String() + "@b", dst.String() + "@c", dst.String() + "@d"}, "\n")+"\n" {
				t.Errorf("target snapshots:\n%s", got)
			}
			if raw {
				// Only the test loads the key, to compare the bytes.
				if ks := h.prop(t, dst, "keystatus"); ks != "unavailable" {
					t.Errorf("target keystatus %q", ks)
				}
				if _, err := h.r.Run(ctx, zfsexec.Cmd{Argv: []string{"zfs", "load-key", dst.String()}, Stdin: strings.NewReader(key + "\n")}); err != nil {
					t.Fatal(err)
				}
				h.sh(t, `zfs mount "$1"`, dst.String())
			}
			for f, sum := range sums {
				if got := h.sha256(t, "/"+dst.String()+"/"+f); got != sum {
					t.Errorf("target %s: %s, source %s", f, got, sum)
				}
			}
		})
	}
}
