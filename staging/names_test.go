package staging

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
)

// forNames runs a test with names kept and with names encrypted.
func forNames(t *testing.T, test func(*testing.T, *fixture)) {
	t.Run("keep", func(t *testing.T) { test(t, newFixture(t)) })
	t.Run("encrypt", func(t *testing.T) {
		f := newFixture(t)
		f.encryptNames()
		test(t, f)
		f.noPlainNames()
	})
}

func (f *fixture) encryptNames() {
	f.t.Helper()
	key := make([]byte, NamesKeySize)
	rand.Read(key)
	c, err := NewNameCipher(key)
	if err != nil {
		f.t.Fatal(err)
	}
	f.st.Names = c
}

var encryptedName = regexp.MustCompile(`^[0-9a-v]{27,}$`)

// noPlainNames: every staged name below the bookkeeping is an encrypted
// name, and no source name appears in the staging copy.
func (f *fixture) noPlainNames() {
	f.t.Helper()
	plain := map[string]bool{}
	filepath.WalkDir(f.src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != f.src {
			plain[d.Name()] = true
		}
		return nil
	})
	n := 0
	err := filepath.WalkDir(f.st.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == f.st.Dir {
			return err
		}
		if d.Name() == MetaDir {
			return filepath.SkipDir
		}
		n++
		if plain[d.Name()] || !encryptedName.MatchString(d.Name()) {
			f.t.Errorf("staged name %q is not encrypted", d.Name())
		}
		return nil
	})
	if err != nil || n == 0 {
		f.t.Fatalf("walk of the staging copy: %v, %d names", err, n)
	}
}

func TestNameCipher(t *testing.T) {
	f := newFixture(t)
	f.encryptNames()
	c := f.st.Names
	for _, name := range []string{"a", "with space", "new\nline", "café ünï", strings.Repeat("x", MaxEncryptedName)} {
		e := c.EncryptName(name)
		if e != c.EncryptName(name) {
			t.Fatalf("%q: not deterministic", name)
		}
		if !encryptedName.MatchString(e) || len(e) > 255 {
			t.Fatalf("%q encrypts to %q (%d bytes)", name, e, len(e))
		}
		if got, err := c.DecryptName(e); err != nil || got != name {
			t.Fatalf("%q: decrypts to %q, %v", name, got, err)
		}
	}
	// A tampered name, or one from another key, is refused.
	// (A middle character: the last one may carry unused bits.)
	e := []byte(c.EncryptName("report.pdf"))
	if i := len(e) / 2; e[i] == '0' {
		e[i] = '1'
	} else {
		e[i] = '0'
	}
	if _, err := c.DecryptName(string(e)); err == nil {
		t.Fatal("a tampered name decrypted")
	}
	g := newFixture(t)
	g.encryptNames()
	if _, err := g.st.Names.DecryptName(c.EncryptName("x")); err == nil {
		t.Fatal("another key decrypted the name")
	}
	if _, err := ParseNamesKey([]byte("abcd")); err == nil {
		t.Fatal("a short names key was accepted")
	}
}

// With encrypted names, restore of one path takes the plain path; a name
// too long to encrypt fails the run with a clear reason and loses nothing;
// a run with another names key or kept names is refused as an incremental
// and restages everything as a full run.
func TestEncryptedNamesRestorePathAndChanges(t *testing.T) {
	f := newFixture(t)
	f.encryptNames()
	f.write("dir/sub/file one", []byte("one"))
	f.write("top", []byte("top"))
	ctx := context.Background()
	if _, err := f.st.Full(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "one")
	if _, err := Restore(ctx, f.st.Dir, "dir/sub/file one", out, []age.Identity{f.id}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "one" {
		t.Fatalf("restored %q", b)
	}
	_, other := keys(t)
	if _, err := Restore(ctx, f.st.Dir, "", t.TempDir(), []age.Identity{other}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}

	long := strings.Repeat("l", MaxEncryptedName+1)
	f.write("dir/"+long, []byte("long"))
	_, err := f.st.Incremental(ctx, "s1", "s2", diff(t, "+|F|dir/"+long, "M|/|dir"))
	var fe *FailedError
	if !errors.As(err, &fe) || len(fe.Failed) != 1 || !strings.Contains(fe.Failed[0].Reason, "names: encrypt") {
		t.Fatalf("want the long name reported, got %v", err)
	}
	os.Remove(filepath.Join(f.src, "dir", long))
	if _, err := f.st.Incremental(ctx, "s1", "s2", diff(t, "M|/|dir")); err != nil {
		t.Fatal(err)
	}

	// Names kept now: an incremental would mix the schemes.
	f.st.Names = nil
	f.write("added", []byte("a"))
	if _, err := f.st.Incremental(ctx, "s2", "s3", diff(t, "+|F|added")); !errors.Is(err, ErrNamesChanged) {
		t.Fatalf("incremental with other names: %v", err)
	}
	if _, err := f.st.Full(ctx, "s3"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.st.Dir, "dir/sub/file one")); err != nil {
		t.Fatal("the full run did not restage under plain names")
	}
	f.checkCopy()
	// And back to encrypted names, with a new key.
	f.encryptNames()
	if _, err := f.st.Full(ctx, "s3"); err != nil {
		t.Fatal(err)
	}
	f.checkCopy()
	f.noPlainNames()
}
