package e2e

import (
	"context"
	"os"
	"os/exec"
	"time"

	"zcloud/internal/testgate"
)

// The test-only gate (internal/testgate) is how a test acts "in the middle
// of" something: the worker holds at a named point until released, so the
// moment is certain however slow or fast the machine is. Points: "send"
// (replication, bytes into the target), "upload" (archive, bytes the store
// took), "restore" (bytes zfs receive took), "verify", and
// "resilver-wait" (on arrival in PoolWaitResilver).

// testGate is the test's gate, shared by its in-process and process workers.
func (e *env) testGate() *testgate.Gate {
	if e.gate == nil {
		e.gate = testgate.New(e.t.TempDir())
	}
	return e.gate
}

// gateEnv enables the gate in a worker process started by cmd.
func (e *env) gateEnv(cmd *exec.Cmd) {
	cmd.Env = append(os.Environ(), testgate.EnvDir+"="+e.testGate().Dir())
}

// holdAt makes the next worker that reaches n bytes at point (0: on
// arrival) hold there; the test's end releases it.
func (e *env) holdAt(point string, n int64) {
	e.t.Helper()
	g := e.testGate()
	if err := g.Arm(point, n); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { g.Release(point) })
}

// waitHeld waits until a worker holds at point.
func (e *env) waitHeld(point string) {
	e.t.Helper()
	if err := e.testGate().WaitHeld(context.Background(), point, 3*time.Minute); err != nil {
		e.t.Fatal(err)
	}
}

// release lets the worker held at point go on.
func (e *env) release(point string) {
	e.t.Helper()
	if err := e.testGate().Release(point); err != nil {
		e.t.Fatal(err)
	}
}
