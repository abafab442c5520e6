// Package keys is the worker's key source. Pool keys, archive identities and
// other secrets are read here, by name, inside activities; they never travel
// in workflow or activity payloads, logs or process arguments.
package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"zcloud/config"
)

// Source reads named secrets from a directory or a command.
type Source struct {
	Dir     string
	Command []string
}

// ErrNotFound: no key by that name.
var ErrNotFound = errors.New("key not found")

// ValidName refuses a key name Get would refuse (config.ValidKeyName: the
// rule lives in config, which checks names without doing I/O).
func ValidName(name string) error { return config.ValidKeyName(name) }

// Get returns the named key's bytes. Files must not be readable by group or
// others: a key file with loose permissions is refused, not silently used.
func (s Source) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	if len(s.Command) > 0 {
		// The helper's stdin is empty and its error output is counted, never
		// kept: a helper may print the key there (or echo whatever it was
		// given), and this error ends up in logs and workflow history.
		var out bytes.Buffer
		var errLen countWriter
		cmd := exec.CommandContext(ctx, s.Command[0], append(s.Command[1:], name)...)
		cmd.Stdout, cmd.Stderr = &out, &errLen
		if err := cmd.Run(); err != nil {
			clear(out.Bytes())
			return nil, fmt.Errorf("key command %s for key %q: %v (its error output, %d bytes, is not shown: it may carry the key; run the command by hand to read it)", s.Command[0], name, err, int64(errLen))
		}
		return bytes.TrimRight(out.Bytes(), "\n"), nil
	}
	if s.Dir == "" {
		return nil, fmt.Errorf("key %q: no key source configured (keys.dir or keys.command)", name)
	}
	p := filepath.Join(s.Dir, name)
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key %q in %s: %w", name, s.Dir, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s has mode %o: must not be readable by group or others (chmod 600)", p, st.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\n"), nil
}

// countWriter counts and discards what is written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
