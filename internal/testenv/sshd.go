package testenv

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"zcloud/zfsexec"
)

// SSHD is a real OpenSSH server on 127.0.0.1 with a fresh host key and one
// authorized client key, logging in as the current user (root in CI).
type SSHD struct {
	Host           string
	Port           int
	User           string
	Signer         ssh.Signer // the authorized client key
	ClientKeyPath  string     // the same key as an OpenSSH private key file
	HostKey        string     // pinned host key, authorized_keys format
	KnownHostsPath string     // known_hosts file listing the host key
	Dir            string
	proc           *process
}

// Config returns a zfsexec.SSHConfig that pins the host key.
func (s *SSHD) Config() zfsexec.SSHConfig {
	return zfsexec.SSHConfig{Host: s.Host, Port: s.Port, User: s.User, Signer: s.Signer, HostKey: s.HostKey, ConnectTimeout: 10 * time.Second}
}

// Runner returns an SSH runner to this server.
func (s *SSHD) Runner(t TB) *zfsexec.SSH {
	t.Helper()
	r, err := zfsexec.NewSSH(s.Config(), nil)
	if err != nil {
		t.Fatalf("ssh runner: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var sharedSSHD struct {
	once sync.Once
	s    *SSHD
	err  error
}

// SharedSSHD returns one sshd per process, started on first use.
func SharedSSHD(t TB) *SSHD {
	t.Helper()
	sharedSSHD.once.Do(func() {
		sharedSSHD.s, sharedSSHD.err = StartSSHD(filepath.Join(sharedDir(), "sshd"))
		if sharedSSHD.err == nil {
			atStop(sharedSSHD.s.Stop)
		}
	})
	if sharedSSHD.err != nil {
		t.Fatalf("sshd: %v", sharedSSHD.err)
	}
	return sharedSSHD.s
}

// NewSSHD starts a private sshd stopped when the test ends.
func NewSSHD(t TB) *SSHD {
	t.Helper()
	s, err := StartSSHD(filepath.Join(t.TempDir(), "sshd"))
	if err != nil {
		t.Fatalf("sshd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func writeKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "zcloud-test")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// StartSSHD starts sshd with its files in dir.
func StartSSHD(dir string) (*SSHD, error) {
	sshdBin, err := lookPath("sshd", "/usr/sbin/sshd")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Privilege separation directory OpenSSH insists on.
	_ = os.MkdirAll("/run/sshd", 0o755)
	hostSigner, err := writeKey(filepath.Join(dir, "host_ed25519"))
	if err != nil {
		return nil, err
	}
	clientPath := filepath.Join(dir, "client_ed25519")
	client, err := writeKey(clientPath)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(client.PublicKey()), 0o600); err != nil {
		return nil, err
	}
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	port := FreePort()
	cfg := strings.Join([]string{
		fmt.Sprintf("Port %d", port),
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_ed25519"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"MaxSessions 200",
		"MaxStartups 200",
		"LogLevel ERROR",
		// A PATH that finds zfs/zpool and the zcloud receiver in tests.
		"SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"",
	}, "\n")
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess(filepath.Join(dir, "sshd.log"), nil, sshdBin, "-D", "-e", "-f", cfgPath)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitTCP(addr, 15*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.tail())
	}
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey())))
	known := fmt.Sprintf("[127.0.0.1]:%d %s\n", port, hostKey)
	knownPath := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownPath, []byte(known), 0o600); err != nil {
		return nil, err
	}
	return &SSHD{Host: "127.0.0.1", Port: port, User: user, Signer: client, ClientKeyPath: clientPath,
		HostKey: hostKey, KnownHostsPath: knownPath, Dir: dir, proc: p}, nil
}

// Stop kills the server.
func (s *SSHD) Stop() { s.proc.stop() }
