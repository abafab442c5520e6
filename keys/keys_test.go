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

// A failing helper that prints the key and echoes its stdin on stderr: the
// error (which reaches logs and workflow history) carries neither.
func TestCommandKeyHelperErrorCarriesNoKey(t *testing.T) {
	d := t.TempDir()
	secret := "9f2c1e7a5b3d8f60c4e2a1b7d9f3e5c2"
	os.WriteFile(filepath.Join(d, "k"), []byte(secret), 0o600)
	helper := filepath.Join(d, "helper")
	os.WriteFile(helper, []byte("#!/bin/sh\ncat >&2\necho \"vault says: $(cat "+filepath.Join(d, "k")+")\" >&2\ncat "+filepath.Join(d, "k")+"\nexit 3\n"), 0o700)
	_, err := Source{Command: []string{helper}}.Get(context.Background(), "pool1")
	if err == nil {
		t.Fatal("a failing helper gave a key")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:8]) {
		t.Fatalf("the error carries the key: %v", err)
	}
	if !strings.Contains(err.Error(), `"pool1"`) || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "by hand") {
		t.Fatalf("the error does not say which key failed and how: %v", err)
	}
}

func TestRedactWithholdsLinesCarryingTheKey(t *testing.T) {
	key := []byte{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	text := "opening device\n" +
		"got key \xde\xad\xbe\xef\x01\x23\x45\x67\x89 from stdin\n" + // raw bytes
		"hex deadbeef0123456789abcdef\n" + // hex
		"b64 3q2+7wEjRWeJq83v\n" + // base64
		"partial 0123456789ab\n" + // 12 hex digits of it
		"key check failed: wrong key"
	got := Redact(text, key)
	want := "opening device\n" + Withheld + "\n" + Withheld + "\n" + Withheld + "\n" + Withheld + "\nkey check failed: wrong key"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if Redact("short: abc", []byte("abc")) != Withheld {
		t.Fatal("a short secret is not matched whole")
	}
	if Redact("nothing here", nil) != "nothing here" {
		t.Fatal("an empty secret changed the text")
	}
}
