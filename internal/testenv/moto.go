package testenv

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Moto is a moto_server on loopback standing in for AWS (EC2, EBS, S3,
// Glacier, SNS). Clients point at Endpoint with any credentials.
type Moto struct {
	Endpoint string
	Region   string
	proc     *process
}

var sharedMoto struct {
	once sync.Once
	m    *Moto
	err  error
}

// SharedMoto returns one moto_server per process. Tests that need a clean
// state use unique bucket/volume names or NewMoto.
func SharedMoto(t TB) *Moto {
	t.Helper()
	sharedMoto.once.Do(func() {
		sharedMoto.m, sharedMoto.err = StartMoto(filepath.Join(sharedDir(), "moto.log"))
		if sharedMoto.err == nil {
			atStop(sharedMoto.m.Stop)
		}
	})
	if sharedMoto.err != nil {
		t.Fatalf("moto: %v", sharedMoto.err)
	}
	return sharedMoto.m
}

// NewMoto starts a private moto_server stopped when the test ends.
func NewMoto(t TB) *Moto {
	t.Helper()
	m, err := StartMoto(filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatalf("moto: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// StartMoto starts moto_server on a free port.
func StartMoto(logPath string) (*Moto, error) {
	bin, err := lookPath("moto_server")
	if err != nil {
		return nil, err
	}
	port := FreePort()
	p, err := startProcess(logPath, nil, bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(addr, 60*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.tail())
	}
	// Static credentials for the SDK's default chain in this process.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"} {
		if os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
	return &Moto{Endpoint: "http://" + addr, Region: "us-east-1", proc: p}, nil
}

// Stop kills the server.
func (m *Moto) Stop() { m.proc.stop() }

// ManualRestores makes S3 RestoreObject stay "in progress" until polled
// `times` times, so restore workflows really wait.
func (m *Moto) ManualRestores(times int) error {
	body := fmt.Sprintf(`{"model_name":"s3::keyrestore","transition":{"progression":"manual","times":%d}}`, times)
	resp, err := http.Post(m.Endpoint+"/moto-api/state-manager/set-transition", "application/json", bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("moto set-transition: %s", resp.Status)
	}
	return nil
}

// Reset clears all of moto's state.
func (m *Moto) Reset() error {
	resp, err := http.Post(m.Endpoint+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
