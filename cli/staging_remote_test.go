package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"filippo.io/age"

	"zcloud/internal/testenv"
	"zcloud/staging"
)

// tree lists what a user compares: every path with its type, mode, and
// SHA-256 (files) or target (symlinks).
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			lines = append(lines, fmt.Sprintf("%q dir", rel))
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("%q -> %q", rel, tg))
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("%q %o %x", rel, fi.Mode().Perm(), sha256.Sum256(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// stagedCopy stages a small tree with awkward names into a new staging
// copy and returns the source, the copy and the private key.
func stagedCopy(t *testing.T, encryptNames bool) (src, dir string, id *age.X25519Identity) {
	t.Helper()
	src, dir = filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "copy")
	for rel, data := range map[string]string{"a/b/deep.txt": "deep", "a/with space": "s", "new\nline": "n", "café": "u", "empty": "", "top": "t"} {
		p := filepath.Join(src, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a/b/deep.txt", filepath.Join(src, "ln")); err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	st := &staging.Stager{Source: src, Dir: dir, Options: staging.Options{Recipients: []age.Recipient{id.Recipient()}}}
	if encryptNames {
		key := make([]byte, staging.NamesKeySize)
		rand.Read(key)
		if st.Names, err = staging.NewNameCipher(key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Full(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	return src, dir, id
}

// `zcloud staging restore --target` reads a replica over SSH (a real
// sshd, with the target's pinned host key) and decrypts it here.
func TestStagingRestoreFromTargetOverSSH(t *testing.T) {
	sshd := testenv.NewSSHD(t)
	src, dir, id := stagedCopy(t, false)
	keyFile := filepath.Join(t.TempDir(), "owner.key")
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	cfg := filepath.Join(t.TempDir(), "zcloud.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`temporal: {address: "localhost:7233", task_queue: q}
targets:
  replica:
    kind: static
    ssh: {host: %s, port: %d, user: %s, identity_file: %s, host_key: %q}
`, sshd.Host, sshd.Port, sshd.User, sshd.ClientKeyPath, sshd.HostKey)), 0o600)
	dest := filepath.Join(t.TempDir(), "restored")
	out, err := run(t, "--config", cfg, "staging", "restore", "--target", "replica", dir, dest, "--identity", keyFile)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, `staged snapshot "s1"`) {
		t.Errorf("output %q", out)
	}
	if got, want := tree(t, dest), tree(t, src); got != want {
		t.Fatalf("restored over SSH:\n%s\nsource:\n%s", got, want)
	}
	if _, err := run(t, "--config", cfg, "staging", "restore", "--target", "nope", dir, dest, "--identity", keyFile); err == nil || !strings.Contains(err.Error(), `no target "nope"`) {
		t.Fatalf("unknown target: %v", err)
	}
}

// Over SSH with encrypted names: everything, a subtree and one file by
// their plain paths; a directory that is not a staging copy, a wrong key
// and a missing path are clear errors.
func TestStagingRestoreRemoteEncryptedNames(t *testing.T) {
	r := testenv.NewSSHD(t).Runner(t)
	src, dir, id := stagedCopy(t, true)
	ctx := context.Background()
	ids := []age.Identity{id}
	dest := filepath.Join(t.TempDir(), "all")
	if _, snap, err := restoreRemote(ctx, r, dir, "", dest, ids); err != nil || snap != "s1" {
		t.Fatalf("restore: %v (snapshot %q)", err, snap)
	}
	if got, want := tree(t, dest), tree(t, src); got != want {
		t.Fatalf("restored:\n%s\nsource:\n%s", got, want)
	}
	sub := filepath.Join(t.TempDir(), "sub")
	if _, _, err := restoreRemote(ctx, r, dir, "a", sub, ids); err != nil {
		t.Fatal(err)
	}
	if got, want := tree(t, sub), tree(t, filepath.Join(src, "a")); got != want {
		t.Fatalf("subtree:\n%s\nsource:\n%s", got, want)
	}
	one := t.TempDir()
	if _, _, err := restoreRemote(ctx, r, dir, "a/with space", one, ids); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(one, "with space")); err != nil || string(b) != "s" {
		t.Fatalf("one file: %q %v", b, err)
	}

	if _, _, err := restoreRemote(ctx, r, t.TempDir(), "", t.TempDir(), ids); err == nil || !strings.Contains(err.Error(), "is not a staging copy") {
		t.Fatalf("not a copy: %v", err)
	}
	other, _ := age.GenerateX25519Identity()
	if _, _, err := restoreRemote(ctx, r, dir, "", t.TempDir(), []age.Identity{other}); !errors.Is(err, staging.ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, _, err := restoreRemote(ctx, r, dir, "no/such", t.TempDir(), ids); err == nil || !strings.Contains(err.Error(), "nothing") {
		t.Fatalf("a missing path: %v", err)
	} else {
		t.Logf("missing path: %v", err)
	}
}
