package testenv

import (
	"fmt"
	"path/filepath"
	"time"
)

// IMDSMock is an ec2-metadata-mock (amazon-ec2-metadata-mock v1.13.0) on
// loopback, standing in for the instance metadata service in spot
// interruption tests.
type IMDSMock struct {
	Endpoint string // base URL, e.g. http://127.0.0.1:1338
	proc     *process
}

// IMDSMockBinary is where scripts/setup.sh (or the README's go install with
// GOBIN=$HOME/.cache/zcloud/bin) puts the mock.
func IMDSMockBinary() string { return filepath.Join(CacheDir(), "bin", "ec2-metadata-mock") }

// StartIMDSMock starts `ec2-metadata-mock <args> -n 127.0.0.1 -p PORT`
// (e.g. args "spot", "-I", "-d", "2": IMDSv2 only, notice after 2 s),
// stopped when the test ends. Tests skip when the mock is not installed.
func StartIMDSMock(t TB, args ...string) *IMDSMock {
	t.Helper()
	bin, err := lookPath("ec2-metadata-mock", IMDSMockBinary())
	if err != nil {
		if s, ok := t.(interface{ Skipf(string, ...any) }); ok {
			s.Skipf("%v", err)
		}
		t.Fatalf("%v", err)
	}
	port := FreePort()
	argv := append([]string{bin}, args...)
	argv = append(argv, "-n", "127.0.0.1", "-p", fmt.Sprint(port))
	// Its config search path is $HOME; an empty temp home keeps a user's
	// aemm-config.json out of the test.
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
