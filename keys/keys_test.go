package keys

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileKeys(t *testing.T) {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "pool"), []byte("s3cret\n"), 0o600)
	os.WriteFile(filepath.Join(d, "loose"), []byte("x"), 0o644)
	s := Source{Dir: d}
	k, err := s.Get(context.Background(), "pool")
	if err != nil || string(k) != "s3cret" {
		t.Fatalf("got %q, %v", k, err)
	}
	if _, err := s.Get(context.Background(), "loose"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose permissions accepted: %v", err)
	}
	if _, err := s.Get(context.Background(), "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	if _, err := s.Get(context.Background(), "../etc/passwd"); err == nil {
		t.Fatal("path traversal accepted")
	}
}

func TestCommandKeys(t *testing.T) {
	s := Source{Command: []string{"sh", "-c", `printf "key-for-%s\n" "$0"`}}
	k, err := s.Get(context.Background(), "pool1")
	if err != nil || string(k) != "key-for-pool1" {
		t.Fatalf("got %q, %v", k, err)
	}
}
