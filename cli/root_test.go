package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := Root()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestUnknownSubcommandFails(t *testing.T) {
	for _, args := range [][]string{{"pool", "bogus"}, {"archive", "nope", "x"}, {"bogus"}} {
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("%v: got %v, want an unknown-command error", args, err)
		}
	}
	if out, err := run(t, "pool"); err != nil || !strings.Contains(out, "Available Commands") {
		t.Errorf("zcloud pool: %v\n%s", err, out)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "--version")
	if err != nil || !strings.HasPrefix(out, "zcloud version ") || !strings.Contains(out, "go1.") {
		t.Fatalf("--version: %v %q", err, out)
	}
}

// Arguments and config are checked before any connection: the config
// points at a port where nothing listens, so a dial would fail differently.
func TestArgumentsCheckedBeforeConnecting(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zcloud.yaml")
	y := "temporal: {address: 127.0.0.1:1}\ntargets:\n  b:\n    ssh: {host: h, identity_file: /k, host_key: k}\n"
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replicate", "tank/a", "--to", "nosuch:x/y"}, `no target named "nosuch"`},
		{[]string{"replicate", "tank/données", "--to", "b:x/y"}, "'é'"},
		{[]string{"replicate", "tank/a", "--to", "b:x/" + strings.Repeat("d", 240)}, "longer than 255"},
		{[]string{"pool", "create", "nosuch"}, "nosuch"},
		{[]string{"session", "run", "b"}, "b"},
	} {
		_, err := run(t, append([]string{"--config", cfg}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%v: got %v, want %q before any dial", tc.args, err, tc.want)
		}
	}
	if _, err := run(t, "config", "check", cfg); err != nil {
		t.Errorf("config check FILE: %v", err)
	}
	if _, err := run(t, "config", "check", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("config check of a missing file passed")
	}
}
