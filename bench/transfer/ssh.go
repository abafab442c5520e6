package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const sshCipher = "aes128-gcm@openssh.com"

// runSSH moves the stream with `ssh -c aes128-gcm@openssh.com host 'cat >/dev/null'`
// into a private sshd on 127.0.0.1 (temporary host and user keys).
func runSSH(cfg config) (result, error) {
	dir, err := os.MkdirTemp("", "zcloud-bench-ssh-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	for _, k := range []string{"host_key", "user_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("ssh-keygen: %v: %s", err, out)
		}
	}
	userPub, _ := os.ReadFile(filepath.Join(dir, "user_key.pub"))
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	port, err := freePort()
	if err != nil {
		return result{}, err
	}
	os.WriteFile(filepath.Join(dir, "authorized_keys"), userPub, 0o600)
	os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(fmt.Sprintf("[%s]:%d %s", cfg.host, port, hostPub)), 0o600)
	config := fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel INFO
`, port, cfg.host, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	cfgPath := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfgPath, []byte(config), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory sshd insists on

	sshd := command(cfg.recvNS, "/usr/sbin/sshd", "-D", "-e", "-f", cfgPath)
	sshdErr, err := sshd.StderrPipe()
	if err != nil {
		return result{}, err
	}
	if err := sshd.Start(); err != nil {
		return result{}, err
	}
	sshdRSS := watchRSS(sshd.Process.Pid)
	defer sshd.Process.Kill()
	if err := waitForLine(sshdErr, "Server listening", 10*time.Second); err != nil {
		return result{}, fmt.Errorf("sshd: %w", err)
	}

	dataR, dataW, err := dataPipe()
	if err != nil {
		return result{}, err
	}
	client := command(cfg.sendNS, "ssh", "-F", "/dev/null", "-T", "-c", sshCipher, "-p", strconv.Itoa(port),
		"-i", filepath.Join(dir, "user_key"), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile="+filepath.Join(dir, "known_hosts"), "-o", "StrictHostKeyChecking=yes",
		"-o", "Compression=no", "root@"+cfg.host, "cat >/dev/null")
	client.Stdin = dataR
	client.Stderr = os.Stderr
	start := time.Now()
	if err := client.Start(); err != nil {
		return result{}, err
	}
	clientRSS := watchRSS(client.Process.Pid)
	dataR.Close()
	fed := startFeed(dataW, cfg, cfg.size)
	if err := client.Wait(); err != nil {
		return result{}, fmt.Errorf("ssh client: %w", err)
	}
	elapsed := time.Since(start)
	f := <-fed
	if f.err != nil {
		return result{}, f.err
	}
	// Let sshd reap its session process (its CPU then counts in sshd's
	// rusage), then stop it.
	time.Sleep(500 * time.Millisecond)
	sshd.Process.Signal(syscall.SIGTERM)
	sshd.Wait()
	return result{
		name:    "ssh -c " + sshCipher + " | cat",
		bytes:   f.n,
		elapsed: elapsed,
		send:    usageOf(client, clientRSS),
		recv:    usageOf(sshd, sshdRSS),
	}, nil
}

func waitForLine(r interface{ Read([]byte) (int, error) }, prefix string, limit time.Duration) error {
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), prefix) {
				ok = true
				found <- true
			}
		}
		if !ok {
			found <- false
		}
	}()
	select {
	case ok := <-found:
		if !ok {
			return fmt.Errorf("exited before %q", prefix)
		}
		return nil
	case <-time.After(limit):
		return fmt.Errorf("no %q within %v", prefix, limit)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
