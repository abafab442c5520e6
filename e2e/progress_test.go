package e2e

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"zcloud/internal/testenv"
)

// A person watching `zcloud replicate` sees the send move: the CLI reads
// live progress from the worker about once a second, so a 30 s send shows
// many distinct byte counts (heartbeats alone, throttled to one per 9.6 s
// at the default timeout, would show three or four). The bandwidth limit
// makes the send last 30 s however fast the machine is; a loaded machine
// only makes it longer.
func TestReplicateCLIShowsLiveProgressOfALimitedSend(t *testing.T) {
	e := newEnv(t)
	const size, rate = 6 << 20, 208 << 10 // ~31 s at the limit
	e.cfg = e.config("parallel", rate, e.sshd.HostKey, e.sshd.Port)
	e.startWorker(e.cfg)
	src := e.src.Pool.String() + "/data"
	testenv.MustZFS(t, "zfs", "create", src)
	b := make([]byte, size/6)
	for i := 0; i < 6; i++ {
		rand.Read(b)
		if err := os.WriteFile(filepath.Join("/"+src, "f"+string(rune('0'+i))), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin, err := zcloudBin()
	if err != nil {
		t.Fatal(err)
	}
	dst := e.dst.Pool.String() + "/data"
	out, err := exec.Command(bin, "replicate", src, "--to", "backup:"+dst, "--config", e.cfgPath).CombinedOutput()
	t.Logf("zcloud replicate:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	assertSameTree(t, "/"+src, "/"+dst)

	counts := map[string]bool{}
	withRate := 0
	for _, m := range regexp.MustCompile(`SendSnapshots send ([0-9.]+ [KMGT]?i?B)([^|\n]*)`).FindAllStringSubmatch(string(out), -1) {
		counts[m[1]] = true
		if strings.Contains(m[2], "/s") {
			withRate++
		}
	}
	t.Logf("%d distinct byte counts, %d lines with a rate", len(counts), withRate)
	if len(counts) < 10 {
		t.Fatalf("the CLI showed %d distinct byte counts of a 30 s send, want at least 10", len(counts))
	}
	if withRate < 10 {
		t.Fatalf("only %d progress lines show a rate", withRate)
	}
}
