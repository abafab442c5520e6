package activities

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"

	"zcloud/cloud/ec2/ec2types"
	"zcloud/config"
	"zcloud/contract"
	"zcloud/zfsname"
)

func identityFile(t *testing.T) string {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	b, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(p, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantNotAllowed(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), field+": not allowed;") || !strings.Contains(err.Error(), contract.ErrTypeNotAllowed) ||
		!strings.Contains(err.Error(), "retryable: false") {
		t.Fatalf("want %s refused, got %v", field, err)
	}
}

// A static target's address and host key come from the config only.
func TestStaticTargetRefusesAnAddressOrHostKeyFromTheRequest(t *testing.T) {
	id := identityFile(t)
	cfg := &config.Config{Targets: map[string]config.Target{"plain": {Kind: "static",
		SSH: config.SSH{Host: "127.0.0.1", Port: 22, User: "root", IdentityFile: id, HostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7KNGBXb9vUE3gE8nS1m1E1hm3x0i5hRkY0vQfCkz8G"}}}}
	a := New(cfg, zap.NewNop())
	for field, at := range map[string]contract.TargetAddr{
		"target_host":     {Host: "127.0.0.2"},
		"target_host_key": {HostKey: "ssh-ed25519 AAAA"},
		"target_instance": {Instance: "i-0123456789abcdef0"},
	} {
		_, _, err := a.targetAt(context.Background(), "plain", at)
		wantNotAllowed(t, err, field)
	}
	_, _, err := a.targetAt(context.Background(), "nosuch", contract.TargetAddr{})
	wantNotAllowed(t, err, "target")
}

// Only an instance whose launch record this worker made for the target is
// trusted: tags alone (which anyone allowed to tag instances can write)
// are not enough.
func TestLaunchRecordIsTheWorkersOwn(t *testing.T) {
	t1 := config.Target{SSH: config.SSH{IdentityFile: identityFile(t)}}
	other := config.Target{SSH: config.SSH{IdentityFile: identityFile(t)}}
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ7KNGBXb9vUE3gE8nS1m1E1hm3x0i5hRkY0vQfCkz8G"
	rec, err := launchTag(t1, "nightly", "zc-token", key)
	if err != nil {
		t.Fatal(err)
	}
	inst := ec2types.Instance{ID: "i-1", Tags: map[string]string{TagTarget: "nightly", TagHostKey: key, TagLaunch: rec}}
	if got, err := launchedBy(t1, "nightly", inst); err != nil || got != key {
		t.Fatalf("own launch: %q %v", got, err)
	}
	forged := func(mod func(map[string]string)) ec2types.Instance {
		i := ec2types.Instance{ID: "i-2", Tags: map[string]string{}}
		for k, v := range inst.Tags {
			i.Tags[k] = v
		}
		mod(i.Tags)
		return i
	}
	for name, i := range map[string]ec2types.Instance{
		"another host key": forged(func(m map[string]string) { m[TagHostKey] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB" }),
		"another target":   forged(func(m map[string]string) { m[TagTarget] = "other" }),
		"no record":        forged(func(m map[string]string) { delete(m, TagLaunch) }),
		"another token":    forged(func(m map[string]string) { m[TagLaunch] = strings.Replace(rec, "zc-token", "zc-other", 1) }),
	} {
		if _, err := launchedBy(t1, "nightly", i); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantNotAllowed(t, err, "target_instance")
		}
	}
	if _, err := launchedBy(other, "nightly", inst); err == nil {
		t.Error("a record made with another identity was accepted")
	}
}

// Staging writes only into the configured staging dataset, snapshots only
// staging datasets and holds zcloud-staging only on a staged source.
func TestStagingRequestsAreTheConfigs(t *testing.T) {
	a := New(&config.Config{Staging: []config.Staging{{Source: "tank/data", Dataset: "tank/staged"}}}, zap.NewNop())
	if err := a.allowStaging("tank/data", "tank/staged"); err != nil {
		t.Fatal(err)
	}
	wantNotAllowed(t, a.allowStaging("tank/data", "tank/elsewhere"), "dataset")
	wantNotAllowed(t, a.allowStaging("tank/other", "tank/staged"), "source")
	if err := a.allowStagingSnapshot("tank/staged"); err != nil {
		t.Fatal(err)
	}
	wantNotAllowed(t, a.allowStagingSnapshot("tank/data"), "snapshot")
	snap, _ := zfsname.MustDataset("tank/data").Snapshot("s1")
	other, _ := zfsname.MustDataset("tank/other").Snapshot("s1")
	if err := a.allowHold(snap, StagingHoldTag); err != nil {
		t.Fatal(err)
	}
	wantNotAllowed(t, a.allowHold(other, StagingHoldTag), "tag")
	wantNotAllowed(t, a.allowHold(snap, contract.ArchiveHoldTag), "tag")
}
