// Package testgate is a TEST-ONLY seam: it lets an end-to-end test stop a
// worker at a named point in the middle of an operation (a send after N
// bytes, the start of a resilver wait), act there (kill the worker, inject
// a spot notice, cancel the workflow) and then let it go on. Tests must
// never learn that an operation is "in the middle" from a heartbeat (the
// SDK throttles them) or a sleep; a gate makes the moment certain.
//
// Production never enables it: a worker has a gate only when the test sets
// ZCLOUD_TEST_GATE_DIR in its environment (or hands an in-process worker a
// Gate). Without one, every method on the nil *Gate returns at once.
//
// The protocol is files in one directory, so it works across processes:
//
//	<point>.arm      written by the test: hold once the count reaches the
//	                 number it holds (0: hold on arrival)
//	<point>.held     the arm file renamed by the one caller that holds
//	                 (a retried attempt finds no arm file and passes),
//	                 holding the count it held at
//	                 (via <point>.claimed while that is written)
//	<point>.release  written by the test: the holder goes on
package testgate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// EnvDir names the environment variable that enables gates in a worker
// process (tests only).
const EnvDir = "ZCLOUD_TEST_GATE_DIR"

// Gate is a directory of hold points; the nil Gate holds nothing.
type Gate struct{ dir string }

// FromEnv returns the gate named by $ZCLOUD_TEST_GATE_DIR, or nil (the
// production case) when it is unset.
func FromEnv() *Gate {
	if d := os.Getenv(EnvDir); d != "" {
		return New(d)
	}
	return nil
}

// New returns a gate on dir (which must exist).
func New(dir string) *Gate { return &Gate{dir: dir} }

// Dir is the gate's directory (for a worker process's environment).
func (g *Gate) Dir() string { return g.dir }

func (g *Gate) path(point, state string) string {
	return filepath.Join(g.dir, point+"."+state)
}

// Pass is called by the worker with the running count n at point. When
// the point is armed and n has reached its threshold, the first caller
// holds there until the test releases the point or ctx ends (it then
// returns ctx's error).
func (g *Gate) Pass(ctx context.Context, point string, n int64) error {
	if g == nil {
		return nil
	}
	b, err := os.ReadFile(g.path(point, "arm"))
	if err != nil {
		return nil // not armed
	}
	at, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n < at {
		return nil
	}
	// Claim the point (one caller wins the rename), write the count it
	// holds at, and only then show it held: a test that sees <point>.held
	// reads the count there (HeldAt).
	if os.Rename(g.path(point, "arm"), g.path(point, "claimed")) != nil {
		return nil // another caller holds it
	}
	if err := os.WriteFile(g.path(point, "claimed"), []byte(fmt.Sprintf("%d\n", n)), 0o600); err != nil {
		return fmt.Errorf("testgate: %w", err)
	}
	if err := os.Rename(g.path(point, "claimed"), g.path(point, "held")); err != nil {
		return fmt.Errorf("testgate: %w", err)
	}
	for {
		if _, err := os.Stat(g.path(point, "release")); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Reached is Pass for a point without a count: it holds on arrival when
// the point is armed.
func (g *Gate) Reached(ctx context.Context, point string) error { return g.Pass(ctx, point, 0) }

// Arm makes the next caller at point hold once its count reaches n.
func (g *Gate) Arm(point string, n int64) error {
	for _, s := range []string{"claimed", "held", "release"} {
		if err := os.Remove(g.path(point, s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	tmp := g.path(point, "arm.tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", n)), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, g.path(point, "arm"))
}

// Held reports whether a caller holds at point now (or held there and was
// killed: the file stays).
func (g *Gate) Held(point string) bool {
	_, err := os.Stat(g.path(point, "held"))
	return err == nil
}

// HeldAt is the count a caller held at point with (the bytes a send had
// passed when it held); false when none holds there.
func (g *Gate) HeldAt(point string) (int64, bool) {
	b, err := os.ReadFile(g.path(point, "held"))
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

// WaitHeld waits until a caller holds at point, failing after limit (a
// limit for a broken run, never what the test synchronises on).
func (g *Gate) WaitHeld(ctx context.Context, point string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !g.Held(point) {
		if time.Now().After(deadline) {
			return fmt.Errorf("testgate: nothing reached %q within %s", point, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Release lets the holder at point (if any, now or later) go on.
func (g *Gate) Release(point string) error {
	return os.WriteFile(g.path(point, "release"), nil, 0o600)
}
