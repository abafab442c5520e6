package zfsexec

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"zcloud/zfsname"
)

// keyRecorder keeps what each command got on stdin.
type keyRecorder struct {
	replayRunner
	stdin [][]byte
}

func (k *keyRecorder) Run(ctx context.Context, c Cmd) (Result, error) {
	var b []byte
	if c.Stdin != nil {
		b, _ = io.ReadAll(c.Stdin)
	}
	k.stdin = append(k.stdin, b)
	k.replayRunner.calls = append(k.replayRunner.calls, c)
	return Result{}, nil
}

func TestCryptsetupKeyOnStdinOnly(t *testing.T) {
	key := []byte("0123456789abcdef-very-secret-key")
	dev, _ := zfsname.ParseDevice("/dev/nvme1n1")
	r := &keyRecorder{}
	c := Cryptsetup{R: r}
	ctx := context.Background()
	if err := c.LuksFormat(ctx, dev, key); err != nil {
		t.Fatal(err)
	}
	if err := c.Open(ctx, dev, "zc-vol1", key); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, "zc-vol1"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cryptsetup luksFormat --batch-mode --type luks2 --key-file=- /dev/nvme1n1",
		"cryptsetup open --type luks --key-file=- /dev/nvme1n1 zc-vol1",
		"cryptsetup close zc-vol1",
	}
	for i, w := range want {
		got := strings.Join(r.calls[i].Argv, " ")
		if got != w {
			t.Errorf("argv %d: %q want %q", i, got, w)
		}
		if strings.Contains(got, string(key)) {
			t.Errorf("key in argv %q", got)
		}
	}
	if !bytes.Equal(r.stdin[0], key) || !bytes.Equal(r.stdin[1], key) || len(r.stdin[2]) != 0 {
		t.Error("key not (only) on stdin")
	}
	if err := c.Open(ctx, dev, "../x", key); err == nil {
		t.Error("bad mapper name accepted")
	}
	if err := c.Open(ctx, dev, "ok", []byte("short")); err == nil {
		t.Error("short key accepted")
	}
	if zfsname.MapperName("zc-vol1").Device().String() != "/dev/mapper/zc-vol1" {
		t.Error("mapper device path")
	}
}

// Real cryptsetup on a file: luksFormat needs no device-mapper (open does,
// and this machine has none), so format + isLuks run for real.
func TestCryptsetupLuksFormatLive(t *testing.T) {
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Skip("cryptsetup not installed")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "vol")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 32<<20); err != nil {
		t.Fatal(err)
	}
	dev, err := zfsname.ParseDevice(path)
	if err != nil {
		t.Fatal(err)
	}
	c := Cryptsetup{R: NewLocal(nil)}
	ctx := context.Background()
	if ok, err := c.IsLuks(ctx, dev); err != nil || ok {
		t.Fatalf("fresh file isLuks = %v %v", ok, err)
	}
	if err := c.LuksFormat(ctx, dev, []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.IsLuks(ctx, dev); err != nil || !ok {
		t.Fatalf("after luksFormat isLuks = %v %v", ok, err)
	}
}
