package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"zcloud/searchattr"
)

// Temporal is a real Temporal server (the CLI's dev server, in memory).
type Temporal struct {
	HostPort  string
	Namespace string
	UIAddr    string // empty when headless
	proc      *process
}

// TemporalBin finds the temporal CLI: $ZCLOUD_TEMPORAL_BIN, the cache dir
// where scripts/setup.sh installs it, or $PATH.
func TemporalBin() (string, error) {
	if p := os.Getenv("ZCLOUD_TEMPORAL_BIN"); p != "" {
		return p, nil
	}
	return lookPath("temporal", filepath.Join(CacheDir(), "bin", "temporal"))
}

var sharedTemporal struct {
	once sync.Once
	s    *Temporal
	err  error
}

// SharedTemporal returns the server named by $ZCLOUD_TEST_TEMPORAL, or one
// dev server per process started on first use.
func SharedTemporal(t TB) *Temporal {
	t.Helper()
	sharedTemporal.once.Do(func() {
		if hp := os.Getenv("ZCLOUD_TEST_TEMPORAL"); hp != "" {
			sharedTemporal.s = &Temporal{HostPort: hp, Namespace: "default"}
			return
		}
		sharedTemporal.s, sharedTemporal.err = StartTemporal(filepath.Join(sharedDir(), "temporal.log"), false)
		if sharedTemporal.err == nil {
			atStop(sharedTemporal.s.Stop)
		}
	})
	if sharedTemporal.err != nil {
		t.Fatalf("temporal: %v", sharedTemporal.err)
	}
	return sharedTemporal.s
}

// StartTemporal starts `temporal server start-dev` on free ports; withUI
// also serves the Web UI.
func StartTemporal(logPath string, withUI bool) (*Temporal, error) {
	return StartTemporalOn(logPath, FreePort(), withUI)
}

// StartTemporalOn is StartTemporal with its gRPC port chosen by the caller
// (a test that points a client there before the server runs).
func StartTemporalOn(logPath string, port int, withUI bool) (*Temporal, error) {
	bin, err := TemporalBin()
	if err != nil {
		return nil, err
	}
	httpPort, metrics := FreePort(), FreePort()
	args := []string{bin, "server", "start-dev", "--ip", "127.0.0.1", "--port", fmt.Sprint(port),
		"--http-port", fmt.Sprint(httpPort), "--metrics-port", fmt.Sprint(metrics), "--log-level", "error"}
	// zcloud's search attributes, as on a real cluster (docs/operations.md):
	// the CLI sets them on every workflow it starts.
	args = append(args, searchattr.DevServerFlags()...)
	ui := ""
	if withUI {
		uiPort := FreePort()
		args = append(args, "--ui-port", fmt.Sprint(uiPort))
		ui = fmt.Sprintf("http://127.0.0.1:%d", uiPort)
	} else {
		args = append(args, "--headless")
	}
	p, err := startProcess(logPath, nil, args...)
	if err != nil {
		return nil, err
	}
	hp := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(hp, 120*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.tail())
	}
	return &Temporal{HostPort: hp, Namespace: "default", UIAddr: ui, proc: p}, nil
}

// Stop kills the server.
func (s *Temporal) Stop() {
	if s.proc != nil {
		s.proc.stop()
	}
}
