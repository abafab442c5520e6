package zfsexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHConfig says how to reach a host. Exactly one of KnownHostsFile and
// HostKey must be set: zcloud never accepts an unknown host key.
type SSHConfig struct {
	Host string
	Port int // default 22
	User string
	// Signer authenticates us (from an identity file, an agent, or a test key).
	Signer ssh.Signer
	// KnownHostsFile is an OpenSSH known_hosts file listing the host.
	KnownHostsFile string
	// HostKey is a pinned key in authorized_keys format ("ssh-ed25519 AAAA...").
	HostKey string
	// ConnectTimeout bounds dial + handshake (default 15s).
	ConnectTimeout time.Duration
	// Dial, if set, replaces net.Dialer (tests map an instance address to a local sshd).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Addr is host:port.
func (c SSHConfig) Addr() string {
	port := c.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(port))
}

// HostKeyMismatchError means the server presented a key that is not the
// pinned one: a permanent error (possible man in the middle).
type HostKeyMismatchError struct {
	Addr string
	Err  error
}

func (e *HostKeyMismatchError) Error() string {
	return fmt.Sprintf("ssh %s: host key verification failed (not the pinned/known key; refusing to connect): %v", e.Addr, e.Err)
}
func (e *HostKeyMismatchError) Unwrap() error { return e.Err }

// UnreachableError means the host could not be reached or refused auth.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("ssh %s: %v", e.Addr, e.Err) }
func (e *UnreachableError) Unwrap() error { return e.Err }

// LoadSigner reads an unencrypted private key file (OpenSSH or PEM format).
func LoadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse identity file %s: %w", path, err)
	}
	return s, nil
}

func (c SSHConfig) hostKeyCallback() (ssh.HostKeyCallback, error) {
	switch {
	case c.HostKey != "" && c.KnownHostsFile != "":
		return nil, errors.New("ssh: set either a pinned host key or a known_hosts file, not both")
	case c.HostKey != "":
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
		if err != nil {
			return nil, fmt.Errorf("ssh: parse pinned host key: %w", err)
		}
		return ssh.FixedHostKey(pk), nil
	case c.KnownHostsFile != "":
		return knownhosts.New(c.KnownHostsFile)
	}
	return nil, errors.New("ssh: no host key configured (pin host_key or give known_hosts); refusing to trust on first use")
}

// SSH runs commands on a remote host over one multiplexed connection.
type SSH struct {
	cfg SSHConfig
	log *zap.Logger

	mu     sync.Mutex
	client *ssh.Client
}

// NewSSH validates cfg; the connection is made on first use.
func NewSSH(cfg SSHConfig, log *zap.Logger) (*SSH, error) {
	if cfg.Host == "" || cfg.User == "" || cfg.Signer == nil {
		return nil, errors.New("ssh: host, user and identity are required")
	}
	if _, err := cfg.hostKeyCallback(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &SSH{cfg: cfg, log: log}, nil
}

// DataHost is the address other connections to the same host (the
// transfer's data streams) should dial.
func (s *SSH) DataHost() string { return s.cfg.Host }

func (s *SSH) Host() string { return s.cfg.User + "@" + s.cfg.Addr() }

func (s *SSH) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}

// Connect dials (if not yet connected) and returns the client.
func (s *SSH) Connect(ctx context.Context) (*ssh.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client != nil {
		return s.client, nil
	}
	hk, err := s.cfg.hostKeyCallback()
	if err != nil {
		return nil, err
	}
	timeout := s.cfg.ConnectTimeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := s.cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	addr := s.cfg.Addr()
	conn, err := dial(dctx, "tcp", addr)
	if err != nil {
		return nil, &UnreachableError{addr, err}
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            s.cfg.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.cfg.Signer)},
		HostKeyCallback: hk,
		Timeout:         timeout,
	})
	if err != nil {
		conn.Close()
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) || isHostKeyMismatch(err) {
			return nil, &HostKeyMismatchError{addr, err}
		}
		return nil, &UnreachableError{addr, err}
	}
	_ = conn.SetDeadline(time.Time{})
	s.client = ssh.NewClient(cc, chans, reqs)
	return s.client, nil
}

func isHostKeyMismatch(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "host key mismatch") || strings.Contains(err.Error(), "knownhosts: key"))
}

func (s *SSH) Run(ctx context.Context, c Cmd) (Result, error) {
	return run(ctx, s.log, s.Host(), s.start, c)
}

// start runs argv as one quoted command line. On cancellation it signals the
// remote process and closes the channel: sshd then hangs up on the process,
// whose stdin reaches EOF and whose writes fail.
func (s *SSH) start(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (func() (int, error), error) {
	client, err := s.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := client.NewSession()
	if err != nil {
		// A dead connection: drop it so the next call redials.
		s.Close()
		return nil, &UnreachableError{s.cfg.Addr(), err}
	}
	sess.Stdout = stdout
	pid := newPIDCatcher(stderr)
	sess.Stderr = pid
	var stdinPipe io.WriteCloser
	if stdin != nil {
		stdinPipe, err = sess.StdinPipe()
		if err != nil {
			sess.Close()
			return nil, err
		}
	}
	line := remoteLine(argv)
	if err := sess.Start(line); err != nil {
		sess.Close()
		return nil, err
	}
	copyDone := make(chan struct{})
	if stdinPipe != nil {
		go func() {
			defer close(copyDone)
			_, _ = io.Copy(stdinPipe, stdin)
			stdinPipe.Close()
		}()
	} else {
		close(copyDone)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// OpenSSH refuses signal requests for root logins ("session
			// signalling requires privilege separation"), so the process
			// group is also killed from a second session by its PID.
			_ = sess.Signal(ssh.SIGTERM)
			s.killRemote(client, pid.wait(time.Second), "TERM")
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				_ = sess.Signal(ssh.SIGKILL)
				s.killRemote(client, pid.wait(0), "KILL")
			}
			sess.Close()
		case <-done:
		}
	}()
	return func() (int, error) {
		err := sess.Wait()
		close(done)
		pid.flush()
		sess.Close()
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			if ee.Signal() != "" {
				return 128 + 9, nil
			}
			return ee.ExitStatus(), nil
		}
		var em *ssh.ExitMissingError
		if errors.As(err, &em) {
			return -1, fmt.Errorf("remote command ended without an exit status (connection lost?)")
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	}, nil
}
