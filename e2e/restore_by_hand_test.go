package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"

	"zcloud/internal/testenv"
)

// docScript is the bash of docs/restore-by-hand.md between the markers
// <!-- NAME:begin --> and <!-- NAME:end -->: every ```bash block, in order,
// exactly as a reader would copy them.
func docScript(t *testing.T, doc, name string) string {
	t.Helper()
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	begin, end := strings.Index(s, "<!-- "+name+":begin -->"), strings.Index(s, "<!-- "+name+":end -->")
	if begin < 0 || end < begin {
		t.Fatalf("%s: no %s section", doc, name)
	}
	blocks := regexp.MustCompile("(?s)```bash\n(.*?)```").FindAllStringSubmatch(s[begin:end], -1)
	if len(blocks) < 3 {
		t.Fatalf("%s: %d bash blocks in %s", doc, len(blocks), name)
	}
	var script strings.Builder
	for _, m := range blocks {
		script.WriteString(m[1])
	}
	return script.String()
}

// The acceptance test of docs/restore-by-hand.md: a 3-stream archive in a
// local directory, restored by the doc's own commands with Debian's age,
// jq, sha256sum and zfs, no zcloud code on the PATH: the data and the
// snapshots (names, GUIDs) come back identical. A damaged object stops the
// doc's script at that stream.
func TestRestoreByHandFollowingTheDoc(t *testing.T) {
	for _, tool := range []string{"age", "jq", "sha256sum", "zfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (scripts/setup.sh installs it): %v", tool, err)
		}
	}
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "archive")
	w := newArchiveWorld(t, e, fmt.Sprintf("kind: local, dir: %q, prefix: zcloud/by-hand", dir))
	e.startWorker(w.cfg)
	for i := 0; i < 3; i++ {
		w.round(t, i)
		if _, _, err := w.archive(w.input()); err != nil {
			t.Fatalf("archive round %d: %v", i, err)
		}
	}
	m := w.assertChain(t, "full:s0", "incr:s1", "incr:s2")
	wantSums := treeSums(t, w.dir)
	wantGUIDs := archSnapGUIDs(t, w.ds.String())

	script := docScript(t, "../docs/restore-by-hand.md", "restore-by-hand:local")
	keyDir := archKeyDir(t, map[string]*age.X25519Identity{"owner": w.owner})
	byHand := func(target string) (string, error) {
		cmd := exec.Command("bash", "-c", script)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir(), "TMPDIR=" + t.TempDir(),
			"STORE=" + dir, "PREFIX=zcloud/by-hand", "DATASET=" + w.ds.String(), "KEY=" + filepath.Join(keyDir, "owner"), "TARGET=" + target}
		out, err := cmd.CombinedOutput()
		t.Logf("the doc's script into %s:\n%s", target, out)
		return string(out), err
	}

	target := e.dst.Pool.String() + "/restored"
	if _, err := byHand(target); err != nil {
		t.Fatalf("the doc's script failed: %v", err)
	}
	assertSameTree(t, w.dir, "/"+target)
	if got := archSnapGUIDs(t, target); fmt.Sprint(got) != fmt.Sprint(wantGUIDs) {
		t.Fatalf("restored snapshots %v, want %v", got, wantGUIDs)
	}
	if got := treeSums(t, "/"+target); !archSameSums(got, wantSums) {
		t.Fatal("restored tree differs")
	}

	// Flip a byte in the middle stream's object: the doc's check stops
	// there; the full before it was received, nothing after it.
	mid := m.Cycles[0].Streams[1]
	archFlip(t, filepath.Join(dir, filepath.FromSlash(mid.Key)), mid.StoredSize/2)
	damaged := e.dst.Pool.String() + "/damaged"
	out, err := byHand(damaged)
	if err == nil || !strings.Contains(out, "FAILED") || !strings.Contains(out, mid.Key) {
		t.Fatalf("a damaged object was not stopped by the doc's check: %v", err)
	}
	if got := archSnapGUIDs(t, damaged); len(got) != 1 || got["s0"] != wantGUIDs["s0"] {
		t.Fatalf("after the damaged stream the target has %v, want s0 only", got)
	}
	testenv.MustZFS(t, "zfs", "list", damaged)
}
