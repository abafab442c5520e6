package zfsexec

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// block is one captured command: its exact command line, combined output
// and exit status (testdata/README.md).
type block struct {
	Cmd string
	Out string
	RC  int
}

func loadBlocks(t *testing.T, path string) []block {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	var bs []block
	var cur *block
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "=====BEGIN "):
			cur = &block{Cmd: strings.TrimPrefix(line, "=====BEGIN ")}
			out = nil
		case strings.HasPrefix(line, "=====END rc=") && cur != nil:
			rc, err := strconv.Atoi(strings.TrimPrefix(line, "=====END rc="))
			if err != nil {
				t.Fatalf("%s: bad END line %q", path, line)
			}
			cur.RC = rc
			if len(out) > 0 {
				cur.Out = strings.Join(out, "\n") + "\n"
			}
			bs = append(bs, *cur)
			cur = nil
		case cur != nil:
			out = append(out, line)
		}
	}
	if len(bs) == 0 {
		t.Fatalf("%s: no blocks", path)
	}
	return bs
}

func loadBlock(t *testing.T, path string) block {
	t.Helper()
	bs := loadBlocks(t, path)
	if len(bs) != 1 {
		t.Fatalf("%s: want 1 block, got %d", path, len(bs))
	}
	return bs[0]
}

// replayRunner answers commands from captured blocks, keyed by command
// line; a non-zero rc becomes an *ExitError classified like a real run.
// It records every Cmd so argv tests can inspect what was built.
type replayRunner struct {
	mu     sync.Mutex
	blocks map[string]block
	calls  []Cmd
}

func newReplay(bs ...block) *replayRunner {
	r := &replayRunner{blocks: map[string]block{}}
	for _, b := range bs {
		r.blocks[b.Cmd] = b
	}
	return r
}

func (r *replayRunner) Host() string { return "replay" }
func (r *replayRunner) Close() error { return nil }
func (r *replayRunner) Run(ctx context.Context, c Cmd) (Result, error) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	line := strings.Join(c.Argv, " ")
	b, ok := r.blocks[line]
	if !ok {
		return Result{}, &ExitError{Host: "replay", Argv: c.Argv, Code: 2, Stderr: "replay: no capture for " + line, Kind: ErrUsage}
	}
	if b.RC != 0 {
		return Result{Stderr: b.Out}, &ExitError{Host: "replay", Argv: c.Argv, Code: b.RC, Stderr: b.Out, Kind: exitKind(b.RC, b.Out)}
	}
	return Result{Stdout: []byte(b.Out)}, nil
}

func (r *replayRunner) lastArgv() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return ""
	}
	return strings.Join(r.calls[len(r.calls)-1].Argv, " ")
}
