package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"go.uber.org/zap"

	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// EnsureReceiver makes sure the target r has the receiver binary at dst
// with the same SHA-256 as the local file src, copying it over SSH (stdin,
// then an atomic rename) when it is missing or different, and verifying
// the copy.
func EnsureReceiver(ctx context.Context, r zfsexec.Runner, src string, dst zfsname.Device, log *zap.Logger) error {
	want, err := fileSHA256(src)
	if err != nil {
		return fmt.Errorf("hash receiver binary %s: %w", src, err)
	}
	have, err := remoteSHA256(ctx, r, dst.String())
	if err != nil {
		return fmt.Errorf("check receiver on %s: %w", r.Host(), err)
	}
	if have == want {
		return nil
	}
	log.Info("installing receiver", zap.String("host", r.Host()), zap.String("path", dst.String()), zap.String("sha256", want), zap.String("found", have))
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	install := `set -e; mkdir -p "$2"; cat > "$1.tmp.$$"; chmod 755 "$1.tmp.$$"; mv -f "$1.tmp.$$" "$1"`
	if _, err := r.Run(ctx, zfsexec.Cmd{Argv: []string{"sh", "-c", install, "sh", dst.String(), path.Dir(dst.String())}, Stdin: f}); err != nil {
		return fmt.Errorf("copy receiver to %s:%s: %w", r.Host(), dst, err)
	}
	if have, err = remoteSHA256(ctx, r, dst.String()); err != nil {
		return err
	}
	if have != want {
		return fmt.Errorf("receiver on %s:%s has SHA-256 %s after copying, want %s", r.Host(), dst, have, want)
	}
	return nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// remoteSHA256 hashes a remote file ("" when missing): GNU sha256sum, or
// BSD sha256 -q.
func remoteSHA256(ctx context.Context, r zfsexec.Runner, p string) (string, error) {
	res, err := r.Run(ctx, zfsexec.Cmd{Argv: []string{"sh", "-c", `if [ ! -f "$1" ]; then exit 0; fi; if command -v sha256sum >/dev/null; then sha256sum "$1"; else sha256 -q "$1"; fi`, "sh", p}})
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(res.Stdout))
	if len(f) == 0 {
		return "", nil
	}
	return f[0], nil
}
