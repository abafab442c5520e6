// Package testenv starts the real components zcloud's tests and demo run
// against: zfs-fuse pools on sparse files, OpenSSH sshd on loopback,
// moto_server, ec2-metadata-mock and a Temporal dev server. Each component is
// started at most once per process and stopped by Stop (call it from
// TestMain via Main); a component already provided by the environment
// (ZCLOUD_TEST_TEMPORAL=host:port, a running zfs-fuse daemon) is used and
// never stopped.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TB is the part of testing.TB the helpers need, so the demo can use them too.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

var (
	stopMu   sync.Mutex
	stoppers []func()
)

// atStop registers f to run at Stop, in reverse order.
func atStop(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stoppers = append(stoppers, f)
}

// Stop stops everything this process started.
func Stop() {
	stopMu.Lock()
	s := stoppers
	stoppers = nil
	stopMu.Unlock()
	for i := len(s) - 1; i >= 0; i-- {
		s[i]()
	}
}

// Main wraps testing.M: func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// CacheDir is where built tools and images live (~/.cache/zcloud).
func CacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "zcloud")
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitTCP waits until addr accepts connections or the deadline passes.
func waitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %s: %w", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// process is a started background server.
type process struct {
	cmd *exec.Cmd
	log string
}

// startProcess starts argv in its own process group with output to logPath.
func startProcess(logPath string, env []string, argv ...string) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go func() { cmd.Wait(); f.Close() }()
	return &process{cmd: cmd, log: logPath}, nil
}

func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	for i := 0; i < 50; i++ {
		if syscall.Kill(p.cmd.Process.Pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// sharedDir is a per-process temp dir for servers that outlive one test.
var sharedDir = sync.OnceValue(func() string {
	d, err := os.MkdirTemp("", "zcloud-testenv-")
	if err != nil {
		panic(err)
	}
	atStop(func() { os.RemoveAll(d) })
	return d
})

func lookPath(name string, extra ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, e := range extra {
		if _, err := os.Stat(e); err == nil {
			return e, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH (run scripts/setup.sh to install the test tools)", name)
}
