package zfsexec

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Implementations DetectCapabilities tells apart.
const (
	ImplOpenZFS = "openzfs"
	ImplZFSFuse = "zfs-fuse"
)

// Capabilities says what the ZFS on one host can do, so callers ask
// caps.ResumableReceive instead of guessing from a version string.
type Capabilities struct {
	Impl    string // ImplOpenZFS or ImplZFSFuse
	Version string // "2.3.2"; for zfs-fuse "pool-23"

	ListParsable     bool // zfs list -p / zpool list -p / zpool status -p
	ResumableReceive bool // zfs receive -s, receive_resume_token, send -t, receive -A
	RawSend          bool // zfs send -w
	Bookmarks        bool // zfs bookmark, send -i #bookmark
	Diff             bool // zfs diff
	ZpoolWait        bool // zpool wait -t
	NativeEncryption bool // encryption=, load-key, unload-key
	Holds            bool // zfs holds (listing); hold/release work everywhere
	JSON             bool // zfs list -j, zpool status -j
	SendEstimate     bool // zfs send -nvP
	SendCompressed   bool // zfs send -c -L -e
	ReceiveOptions   bool // zfs receive -u -o -x
	MultiSnapshot    bool // zfs snapshot a@x b@y in one atomic command
	OnlineExpand     bool // zpool online -e
}

func (c Capabilities) String() string {
	if c.Impl == "" {
		return "unknown ZFS"
	}
	return c.Impl + " " + c.Version
}

// unsupported returns an UnsupportedError when the capability is known to be
// missing. Zero Capabilities (never detected) let the command through: ZFS
// itself then answers with a usage error.
func (c Capabilities) unsupported(have bool, feature string) error {
	if c.Impl == "" || have {
		return nil
	}
	return &UnsupportedError{Feature: feature, Impl: c.String()}
}

// zfsFuseCaps: zfs-fuse 0.7.0 (pool version 23) answers a usage error for all
// of these (see testdata/zfs-fuse).
func zfsFuseCaps(poolVersion int) Capabilities {
	return Capabilities{Impl: ImplZFSFuse, Version: fmt.Sprintf("pool-%d", poolVersion)}
}

// openZFSCaps maps an OpenZFS version to its features (OpenZFS release notes:
// resumable send/receive 0.7, raw send + encryption 0.8, zpool wait 2.0,
// JSON output 2.3).
func openZFSCaps(version string) Capabilities {
	major, minor := parseMajorMinor(version)
	atLeast := func(ma, mi int) bool { return major > ma || (major == ma && minor >= mi) }
	return Capabilities{
		Impl:             ImplOpenZFS,
		Version:          version,
		ListParsable:     true,
		ResumableReceive: atLeast(0, 7),
		RawSend:          atLeast(0, 8),
		Bookmarks:        true,
		Diff:             true,
		ZpoolWait:        atLeast(2, 0),
		NativeEncryption: atLeast(0, 8),
		Holds:            true,
		JSON:             atLeast(2, 3),
		SendEstimate:     true,
		SendCompressed:   atLeast(0, 7),
		ReceiveOptions:   atLeast(0, 7),
		MultiSnapshot:    true,
		OnlineExpand:     true,
	}
}

func parseMajorMinor(v string) (int, int) {
	parts := strings.SplitN(v, ".", 3)
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	return major, minor
}

var zfsVersionRe = regexp.MustCompile(`^zfs-(\d+\.\d+(?:\.\d+)?)`)

// parseZFSVersion reads `zfs version` (OpenZFS >= 0.8): "zfs-2.3.2-1~bpo12+1"
// then "zfs-kmod-2.3.2-1...". The userland line decides.
func parseZFSVersion(out []byte) (string, error) {
	for i, line := range outputLines(out) {
		if strings.HasPrefix(line, "zfs-kmod-") {
			continue
		}
		if m := zfsVersionRe.FindStringSubmatch(line); m != nil {
			return m[1], nil
		}
		return "", &ParseError{"zfs version", i + 1, line, "want zfs-X.Y.Z"}
	}
	return "", &ParseError{Cmd: "zfs version", Reason: "empty output"}
}

var poolVersionRe = regexp.MustCompile(`currently running ZFS pool version (\d+)\.`)

// parsePoolVersion reads the legacy pool version from `zpool upgrade -v`
// (0 when the system uses feature flags: "...supports feature flags").
func parsePoolVersion(out []byte) (int, bool) {
	m := poolVersionRe.FindSubmatch(out)
	if m == nil {
		return 0, false
	}
	v, err := strconv.Atoi(string(m[1]))
	return v, err == nil
}

// DetectCapabilities probes the host behind r: `zfs version` exists on
// OpenZFS >= 0.8; older ZFS answers a usage error, and `zpool upgrade -v`
// then tells a legacy (pool version <= 28, i.e. zfs-fuse) system from an
// old feature-flag OpenZFS.
func DetectCapabilities(ctx context.Context, r Runner) (Capabilities, error) {
	res, err := r.Run(ctx, Cmd{Argv: []string{"zfs", "version"}})
	if err == nil {
		v, perr := parseZFSVersion(res.Stdout)
		if perr != nil {
			return Capabilities{}, perr
		}
		return openZFSCaps(v), nil
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Kind != ErrUsage {
		return Capabilities{}, fmt.Errorf("detect ZFS on %s: %w", r.Host(), err)
	}
	res, err = r.Run(ctx, Cmd{Argv: []string{"zpool", "upgrade", "-v"}})
	if err != nil {
		return Capabilities{}, fmt.Errorf("detect ZFS on %s: %w", r.Host(), err)
	}
	if pv, ok := parsePoolVersion(res.Stdout); ok && pv <= 28 {
		return zfsFuseCaps(pv), nil
	}
	// Feature flags but no `zfs version`: OpenZFS 0.6/0.7. Assume the
	// oldest of those so nothing is promised that is not there.
	return openZFSCaps("0.6"), nil
}
