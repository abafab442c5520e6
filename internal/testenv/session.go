package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StartIMDSMockAt is StartIMDSMock on a port chosen by the caller, so a
// test can configure the endpoint first and start the mock (and with it
// the notice clock) at the moment it wants the notice.
func StartIMDSMockAt(t TB, port int, args ...string) *IMDSMock {
	t.Helper()
	bin, err := lookPath("ec2-metadata-mock", IMDSMockBinary())
	if err != nil {
		if s, ok := t.(interface{ Skipf(string, ...any) }); ok {
			s.Skipf("%v", err)
		}
		t.Fatalf("%v", err)
	}
	argv := append([]string{bin}, args...)
	argv = append(argv, "-n", "127.0.0.1", "-p", fmt.Sprint(port))
	p, err := startProcess(filepath.Join(t.TempDir(), "imds.log"), []string{"HOME=" + t.TempDir()}, argv...)
	if err != nil {
		t.Fatalf("imds mock: %v", err)
	}
	t.Cleanup(p.stop)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(addr, 20*time.Second); err != nil {
		t.Fatalf("imds mock: %v\n%s", err, p.tail())
	}
	return &IMDSMock{Endpoint: "http://" + addr, proc: p}
}

// NewMotoWithEnv starts a private moto_server with extra environment (e.g.
// MOTO_ENABLE_AMI_VALIDATION=true), stopped when the test ends.
func NewMotoWithEnv(t TB, env ...string) *Moto {
	t.Helper()
	bin, err := lookPath("moto_server")
	if err != nil {
		t.Fatalf("moto: %v", err)
	}
	port := FreePort()
	p, err := startProcess(filepath.Join(t.TempDir(), "moto.log"), env, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err != nil {
		t.Fatalf("moto: %v", err)
	}
	t.Cleanup(p.stop)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(addr, 60*time.Second); err != nil {
		t.Fatalf("moto: %v\n%s", err, p.tail())
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return &Moto{Endpoint: "http://" + addr, Region: "us-east-1", proc: p}
}
