package activities

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/internal/testenv"
	"zcloud/staging"
	"zcloud/zfsname"
)

// On zfs-fuse: the plan reads the staging copy's state and the names key
// from the key source. A copy staged with other names is restaged in full
// (never an incremental mixing names); one with this key's names and the
// newest snapshot needs nothing; a names key missing from the key source
// is a permanent config error naming it.
func TestPlanStagingFollowsTheNamesSetting(t *testing.T) {
	pool := testenv.NewPool(t, "stg", 1, 128, "")
	src := zfsname.MustDataset(pool.Pool.String() + "/src")
	dst := zfsname.MustDataset(pool.Pool.String() + "/stg")
	testenv.MustZFS(t, "zfs", "create", src.String())
	testenv.MustZFS(t, "zfs", "create", dst.String())
	testenv.MustZFS(t, "zfs", "snapshot", src.String()+"@s1")

	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	key := make([]byte, staging.NamesKeySize)
	for i := range key {
		key[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(keyDir, "stg-names"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	names, err := staging.NewNameCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Keys: config.Keys{Dir: keyDir}, Staging: []config.Staging{{Source: src.String(), Dataset: dst.String(),
		Recipients: []string{id.Recipient().String()}, Names: "encrypt", NamesKey: "stg-names"}}}
	a := New(cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	ctx := context.Background()
	setState := func(st staging.State) {
		t.Helper()
		dir := filepath.Join(pool.Mountpoint(dst), staging.MetaDir)
		os.MkdirAll(dir, 0o700)
		b := `{"snapshot":"` + st.Snapshot + `","names":"` + st.Names + `"}`
		if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	plan := func() contract.StagingPlan {
		t.Helper()
		p, err := a.PlanStaging(ctx, contract.StagingPlanRequest{Source: src, Dataset: dst})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	setState(staging.State{Snapshot: "s1"}) // staged with names kept
	if p := plan(); p.Action != contract.StagingFull || p.To != "s1" || !strings.Contains(p.Note, "names") {
		t.Fatalf("names kept in the copy, encrypt configured: plan %+v, want a full run saying why", p)
	}
	setState(staging.State{Snapshot: "s1", Names: names.ID()})
	if p := plan(); p.Action != contract.StagingSkip {
		t.Fatalf("copy current with this key: plan %+v", p)
	}
	testenv.MustZFS(t, "zfs", "snapshot", src.String()+"@s2")
	if p := plan(); p.Action != contract.StagingIncremental || p.From != "s1" || p.To != "s2" {
		t.Fatalf("new snapshot: plan %+v", p)
	}

	os.Remove(filepath.Join(keyDir, "stg-names"))
	_, err = a.PlanStaging(ctx, contract.StagingPlanRequest{Source: src, Dataset: dst})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() || !strings.Contains(err.Error(), `"stg-names"`) {
		t.Fatalf("missing names key: %v", err)
	}
}
