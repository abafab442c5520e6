// Package vmhost boots and controls the OpenZFS 2.3 test VM built by
// vm/openzfs-vm.sh, for integration tests that need what zfs-fuse lacks
// (native encryption, raw sends, resumable receives, zfs diff, bookmarks,
// zpool wait) or what this host lacks (device-mapper, so LUKS).
//
// The VM is reached over SSH on 127.0.0.1 (QEMU user networking) with a host
// key generated per run and injected into the guest before boot, so callers
// pin it instead of trusting on first use. Disks are virtio-blk devices whose
// serial is an EBS-like volume id; the guest sees them as
// /dev/disk/by-id/virtio-<serial>. AttachDisk and DetachDisk hot-plug them
// through QEMU's QMP monitor, like attaching and detaching EBS volumes.
package vmhost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Disk is a virtual disk: Serial is what the guest sees under
// /dev/disk/by-id/virtio-<Serial> (at most 20 characters, virtio-blk's limit;
// an EBS volume id without its dash fits: "vol0123456789abcdef0").
type Disk struct {
	Serial string
	Size   int64 // bytes; the backing file is sparse
}

// Options configure Start. Zero values take the defaults noted.
type Options struct {
	Disks       []Disk        // disks present at boot
	MemoryMiB   int           // guest memory; default 2048
	CPUs        int           // guest vCPUs; default 2
	Forwards    map[int]int   // extra TCP forwards: host port on 127.0.0.1 -> guest port
	RunDir      string        // where the run's files go; default a new temp dir
	Script      string        // path to openzfs-vm.sh; default found from the module root
	BootTimeout time.Duration // time to wait for SSH after qemu starts; default 5 min
	Log         io.Writer     // the script's progress messages; default os.Stderr
}

// VM is a running test VM.
type VM struct {
	RunDir         string
	Image          string // cached image directory (kernel + initramfs)
	PID            int    // qemu's process id
	Host           string // "127.0.0.1"
	Port           int    // forwarded guest SSH port
	User           string // "root"
	KeyPath        string // client private key (OpenSSH format, no passphrase)
	HostKey        string // pinned guest host key, "ssh-ed25519 AAAA..."
	KnownHostsLine string // "[127.0.0.1]:port ssh-ed25519 AAAA..."
	KnownHosts     string // path of a known_hosts file holding KnownHostsLine
	SSHConfig      string // path of an ssh_config for host alias "zcloud-vm"
	QMPSocket      string // QMP (JSON) monitor unix socket
	MonitorSocket  string // human monitor (HMP) unix socket
	ConsoleLog     string // guest serial console
	DiskDir        string // backing files of the disks, <serial>.img
	Forwards       map[int]int

	script string
	log    io.Writer

	env map[string]string

	mu    sync.Mutex
	disks map[string]Disk // attached disks by serial
	qmpMu sync.Mutex
}

// Addr is the SSH address, host:port.
func (v *VM) Addr() string { return fmt.Sprintf("%s:%d", v.Host, v.Port) }

// Disks lists the attached disks.
func (v *VM) Disks() []Disk {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Disk, 0, len(v.disks))
	for _, d := range v.disks {
		out = append(out, d)
	}
	return out
}

// DevicePath is where the guest sees the disk with this serial.
func DevicePath(serial string) string { return "/dev/disk/by-id/virtio-" + serial }

// DiskPath is the host file backing the disk with this serial.
func (v *VM) DiskPath(serial string) string { return filepath.Join(v.DiskDir, serial+".img") }

// Signer loads the client private key.
func (v *VM) Signer() (ssh.Signer, error) {
	b, err := os.ReadFile(v.KeyPath)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

// HostPublicKey parses the pinned host key.
func (v *VM) HostPublicKey() (ssh.PublicKey, error) {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(v.HostKey))
	return k, err
}

// ClientConfig is an x/crypto/ssh client configuration for root with the
// client key and the pinned host key (never InsecureIgnoreHostKey).
func (v *VM) ClientConfig() (*ssh.ClientConfig, error) {
	s, err := v.Signer()
	if err != nil {
		return nil, err
	}
	hk, err := v.HostPublicKey()
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{
		User:              v.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(s)},
		HostKeyCallback:   ssh.FixedHostKey(hk),
		HostKeyAlgorithms: []string{hk.Type()},
		Timeout:           15 * time.Second,
	}, nil
}

var serialRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,20}$`)

// ValidSerial reports whether s can be a disk serial (QEMU id and guest
// by-id name alike).
func ValidSerial(s string) bool { return serialRE.MatchString(s) }

// FindScript locates vm/openzfs-vm.sh: $ZCLOUD_VM_SCRIPT, else upwards from
// the working directory, else relative to this source file.
func FindScript() (string, error) {
	if s := os.Getenv("ZCLOUD_VM_SCRIPT"); s != "" {
		return s, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			p := filepath.Join(d, "vm", "openzfs-vm.sh")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("vmhost: cannot find vm/openzfs-vm.sh (set ZCLOUD_VM_SCRIPT)")
}

// Build builds the VM image if it is not cached and returns its directory.
// A cold build takes 15-25 minutes on 2 cores (mostly zfs.ko).
func Build(ctx context.Context, script string, log io.Writer) (string, error) {
	if script == "" {
		var err error
		if script, err = FindScript(); err != nil {
			return "", err
		}
	}
	if log == nil {
		log = os.Stderr
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script, "build")
	cmd.Stdout = &out
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("vmhost: %s build: %w", script, err)
	}
	return strings.TrimSpace(out.String()), nil
}

// Start builds the image if needed and boots a VM, returning once SSH
// answers with the pinned host key. The VM is stopped by Stop; should this
// process die first, a watcher started by the script stops it.
func Start(ctx context.Context, opts Options) (*VM, error) {
	script := opts.Script
	if script == "" {
		var err error
		if script, err = FindScript(); err != nil {
			return nil, err
		}
	}
	log := opts.Log
	if log == nil {
		log = os.Stderr
	}
	runDir := opts.RunDir
	if runDir == "" {
		d, err := os.MkdirTemp("", "zcloud-vm-")
		if err != nil {
			return nil, err
		}
		// Let the script own (and remove) the directory.
		if err := os.Remove(d); err != nil {
			return nil, err
		}
		runDir = d
	}
	args := []string{"start", "--run-dir", runDir, "--watch-pid", strconv.Itoa(os.Getpid())}
	for _, d := range opts.Disks {
		if !ValidSerial(d.Serial) {
			return nil, fmt.Errorf("vmhost: invalid disk serial %q (1-20 of [A-Za-z0-9_-])", d.Serial)
		}
		if d.Size <= 0 {
			return nil, fmt.Errorf("vmhost: disk %s: size must be positive", d.Serial)
		}
		args = append(args, "--disk", fmt.Sprintf("%s:%d", d.Serial, d.Size))
	}
	if opts.MemoryMiB > 0 {
		args = append(args, "--memory", strconv.Itoa(opts.MemoryMiB))
	}
	if opts.CPUs > 0 {
		args = append(args, "--cpus", strconv.Itoa(opts.CPUs))
	}
	if opts.BootTimeout > 0 {
		args = append(args, "--timeout", strconv.Itoa(int(opts.BootTimeout.Seconds())))
	}
	for h, g := range opts.Forwards {
		args = append(args, "--forward", fmt.Sprintf("%d:%d", h, g))
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Stdout = io.Discard
	cmd.Stderr = io.MultiWriter(log, &stderr)
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("vmhost: %s start: %w\n%s", script, err, tail(stderr.String(), 4000))
	}
	v, err := attach(runDir, script, log)
	if err != nil {
		return nil, err
	}
	for _, d := range opts.Disks {
		v.disks[d.Serial] = d
	}
	return v, nil
}

// Attach returns the VM already running in runDir (started by
// `openzfs-vm.sh start --run-dir runDir`). Its Stop stops it.
func Attach(runDir string) (*VM, error) {
	script, err := FindScript()
	if err != nil {
		return nil, err
	}
	v, err := attach(runDir, script, os.Stderr)
	if err != nil {
		return nil, err
	}
	for _, s := range strings.Fields(v.env["ZCLOUD_VM_DISKS"]) {
		if fi, err := os.Stat(v.DiskPath(s)); err == nil {
			v.disks[s] = Disk{Serial: s, Size: fi.Size()}
		}
	}
	return v, nil
}

func attach(runDir, script string, log io.Writer) (*VM, error) {
	env, err := readEnv(filepath.Join(runDir, "vm.env"))
	if err != nil {
		return nil, err
	}
	v := &VM{
		RunDir:        env["ZCLOUD_VM_RUN_DIR"],
		Image:         env["ZCLOUD_VM_IMAGE"],
		Host:          env["ZCLOUD_VM_SSH_HOST"],
		User:          env["ZCLOUD_VM_SSH_USER"],
		KeyPath:       env["ZCLOUD_VM_SSH_KEY"],
		HostKey:       env["ZCLOUD_VM_HOST_KEY"],
		KnownHosts:    env["ZCLOUD_VM_KNOWN_HOSTS"],
		SSHConfig:     env["ZCLOUD_VM_SSH_CONFIG"],
		QMPSocket:     env["ZCLOUD_VM_QMP"],
		MonitorSocket: env["ZCLOUD_VM_MONITOR"],
		ConsoleLog:    env["ZCLOUD_VM_CONSOLE"],
		DiskDir:       env["ZCLOUD_VM_DISK_DIR"],
		Forwards:      map[int]int{},
		script:        script,
		log:           log,
		disks:         map[string]Disk{},
		env:           env,
	}
	for k, val := range env {
		if g, ok := strings.CutPrefix(k, "ZCLOUD_VM_FORWARD_"); ok {
			gp, err1 := strconv.Atoi(g)
			hp, err2 := strconv.Atoi(val)
			if err1 == nil && err2 == nil {
				v.Forwards[hp] = gp
			}
		}
	}
	if v.Port, err = strconv.Atoi(env["ZCLOUD_VM_SSH_PORT"]); err != nil {
		return nil, fmt.Errorf("vmhost: %s/vm.env: bad ZCLOUD_VM_SSH_PORT: %w", runDir, err)
	}
	if v.RunDir == "" || v.HostKey == "" || v.KeyPath == "" || v.QMPSocket == "" {
		return nil, fmt.Errorf("vmhost: %s/vm.env is incomplete", runDir)
	}
	v.PID, _ = strconv.Atoi(env["ZCLOUD_VM_PID"])
	if b, err := os.ReadFile(v.KnownHosts); err == nil {
		v.KnownHostsLine = strings.TrimSpace(string(b))
	}
	return v, nil
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vmhost: %w", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, val, ok := strings.Cut(sc.Text(), "=")
		if ok {
			env[k] = val
		}
	}
	return env, sc.Err()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Stop shuts the guest down cleanly (pools exported), kills qemu if it does
// not exit, and removes the run directory's files.
func (v *VM) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, v.script, "stop", "--run-dir", v.RunDir)
	cmd.Stderr = io.MultiWriter(v.log, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("vmhost: stop: %w\n%s", err, tail(stderr.String(), 2000))
	}
	return nil
}

// AttachDisk creates a sparse disk of sizeBytes and hot-plugs it as a
// virtio-blk device with this serial (like attaching an EBS volume). The guest
// sees it as DevicePath(serial) once udev has processed the event; wait for
// that path in the guest.
func (v *VM) AttachDisk(serial string, sizeBytes int64) error {
	if !ValidSerial(serial) {
		return fmt.Errorf("vmhost: invalid disk serial %q (1-20 of [A-Za-z0-9_-])", serial)
	}
	if sizeBytes <= 0 {
		return fmt.Errorf("vmhost: disk %s: size must be positive", serial)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.disks[serial]; ok {
		return fmt.Errorf("vmhost: disk %s is already attached", serial)
	}
	path := v.DiskPath(serial)
	if err := os.MkdirAll(v.DiskDir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(sizeBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	q, err := v.qmp()
	if err != nil {
		return err
	}
	defer q.close()
	if _, err := q.exec("blockdev-add", map[string]any{
		"driver":    "raw",
		"node-name": "drv-" + serial,
		"file": map[string]any{
			"driver":   "file",
			"filename": path,
			"aio":      "threads",
		},
	}); err != nil {
		return fmt.Errorf("vmhost: attach %s: %w", serial, err)
	}
	if _, err := q.exec("device_add", map[string]any{
		"driver": "virtio-blk-pci",
		"drive":  "drv-" + serial,
		"serial": serial,
		"id":     "dev-" + serial,
	}); err != nil {
		_, _ = q.exec("blockdev-del", map[string]any{"node-name": "drv-" + serial})
		return fmt.Errorf("vmhost: attach %s: %w", serial, err)
	}
	v.disks[serial] = Disk{Serial: serial, Size: sizeBytes}
	return nil
}

// DetachDisk hot-unplugs the disk (like detaching an EBS volume: the guest
// loses it whether or not it is in use), waits until QEMU reports the device
// gone, and deletes its backing file.
func (v *VM) DetachDisk(serial string) error {
	if !ValidSerial(serial) {
		return fmt.Errorf("vmhost: invalid disk serial %q", serial)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	q, err := v.qmp()
	if err != nil {
		return err
	}
	defer q.close()
	id := "dev-" + serial
	if _, err := q.exec("device_del", map[string]any{"id": id}); err != nil {
		return fmt.Errorf("vmhost: detach %s: %w", serial, err)
	}
	if err := q.waitEvent("DEVICE_DELETED", id, 2*time.Minute); err != nil {
		return fmt.Errorf("vmhost: detach %s: %w", serial, err)
	}
	// Disks given at boot have a -drive that goes with the device; hot-plugged
	// ones have a blockdev node to delete.
	_, _ = q.exec("blockdev-del", map[string]any{"node-name": "drv-" + serial})
	delete(v.disks, serial)
	if err := os.Remove(v.DiskPath(serial)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// HMP runs a human-monitor command (e.g. "info block") and returns its output.
func (v *VM) HMP(command string) (string, error) {
	q, err := v.qmp()
	if err != nil {
		return "", err
	}
	defer q.close()
	r, err := q.exec("human-monitor-command", map[string]any{"command-line": command})
	if err != nil {
		return "", err
	}
	var s string
	if err := jsonUnmarshal(r, &s); err != nil {
		return "", err
	}
	return s, nil
}

func (v *VM) qmp() (*qmpConn, error) {
	v.qmpMu.Lock()
	q, err := dialQMP(v.QMPSocket, 10*time.Second)
	if err != nil {
		v.qmpMu.Unlock()
		return nil, err
	}
	q.unlock = v.qmpMu.Unlock
	return q, nil
}
