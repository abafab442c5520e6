package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A key name the key source would later refuse is refused by keygen, and
// no key file is written.
func TestKeygenRefusesNamesTheKeySourceCannotRead(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zcloud.yaml")
	if err := os.WriteFile(cfg, []byte("keys: {dir: "+dir+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a b", "../x", ".hidden", "données"} {
		root := Root()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs([]string{"--config", cfg, "archive", "keygen", name})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), "key name") {
			t.Errorf("keygen %q: got %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("key files written: %v", ents)
	}
	root := Root()
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	root.SetArgs([]string{"--config", cfg, "archive", "keygen", "archive-host"})
	if err := root.Execute(); err != nil {
		t.Fatalf("a good name refused: %v", err)
	}
}
