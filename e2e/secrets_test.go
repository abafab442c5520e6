package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zcloud/contract"
)

// A key helper and an unlock command that echo their stdin (and the key) on
// stderr: the session fails with a clear error, and neither that error, the
// worker's log nor the recorded history carries the key.
func TestSessionEchoingHelpersLeakNoKey(t *testing.T) {
	for _, tc := range []struct {
		name     string
		helper   bool // the key helper echoes and fails; else the unlock command
		wantType string
		wantText string
	}{
		{"unlock command", false, contract.ErrTypeKeyIncorrect, "wrong key"},
		{"key helper", true, contract.ErrTypeConfig, `key command`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSessEnv(t)
			o := sessOpts{}
			keyFile := filepath.Join(s.keyDir, "pool-key")
			if tc.helper {
				o.keyCommand = filepath.Join(t.TempDir(), "key-helper")
				script := "#!/bin/sh\ncat >&2\necho \"helper: key for $1 is $(cat " + keyFile + ")\" >&2\ncat " + keyFile + "\nexit 3\n"
				if err := os.WriteFile(o.keyCommand, []byte(script), 0o700); err != nil {
					t.Fatal(err)
				}
			} else {
				script := "#!/bin/sh\necho 'got key:' >&2\ncat >&2\necho >&2\necho 'key check failed: wrong key' >&2\nexit 1\n"
				if err := os.WriteFile(s.unlock, []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			s.sessionConfig(o)
			s.startWorker(s.cfg, s.seams)
			s.exportInstancePool()
			run := s.startSession()
			ae := failed(t, run, s.ctx(2*time.Minute))
			if ae.Type() != tc.wantType || !strings.Contains(ae.Error(), tc.wantText) {
				t.Errorf("error %s %q, want %s naming %q", ae.Type(), ae.Error(), tc.wantType, tc.wantText)
			}
			if !tc.helper && !strings.Contains(s.logs.String(), "zcloud-unlock") {
				t.Error("the unlock command never ran: the test proves nothing")
			}
			s.assertNoneRunning(s.moto, 1)
			// The key, or any 16 characters of it.
			hist := s.historyBytes(run.GetID())
			for name, hay := range map[string][]byte{"error": []byte(ae.Error()), "workflow history": hist, "worker logs": []byte(s.logs.String())} {
				for _, k := range []string{s.key, s.key[:16], s.key[24:40]} {
					if bytes.Contains(hay, []byte(k)) {
						t.Errorf("key bytes %q found in the %s", k, name)
					}
				}
			}
		})
	}
}
