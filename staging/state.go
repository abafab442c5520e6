package staging

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MetaDir is the staging copy's own bookkeeping, at the top of the staging
// directory: the last staged snapshot, the journal of a run in progress and
// temp files. A source entry of this name at the top is skipped (reported).
const MetaDir = ".zcloud-staging"

// State is what a staging copy says about itself (MetaDir/state.json).
type State struct {
	// Snapshot is the last snapshot staged completely ("" before the first
	// full run finished). Incremental runs start from it.
	Snapshot string `json:"snapshot"`
	// Names is the names key's ID when names are encrypted ("": kept).
	Names string `json:"names,omitempty"`
}

// journal records how far a run got, so that a rerun after a crash neither
// repeats non-idempotent steps (moves) nor re-encrypts what is done.
type journal struct {
	Kind  string `json:"kind"` // "full" or "incremental"
	From  string `json:"from,omitempty"`
	To    string `json:"to"`
	Steps int    `json:"steps"` // incremental: removal/move steps done
	// Removed and Moved count what those steps did, so the report of an
	// attempt that resumes a killed one still says what the run did.
	Removed int `json:"removed,omitempty"`
	Moved   int `json:"moved,omitempty"`
	Files   int `json:"files"` // full: files done in walk order (all up to it)
}

func (s *Stager) meta(name string) string { return filepath.Join(s.Dir, MetaDir, name) }

// ReadState reads a staging directory's state; a directory never staged
// into has the zero State.
func ReadState(dir string) (State, error) {
	var st State
	err := readJSON(filepath.Join(dir, MetaDir, "state.json"), &st)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	return st, err
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON replaces path atomically with v's JSON.
func writeJSON(path string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFile(path, b, sync)
}

// writeFile replaces path atomically with b (temp file, fsync, rename).
func writeFile(path string, b []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *Stager) readJournal() (journal, error) {
	var j journal
	err := readJSON(s.meta("journal.json"), &j)
	if errors.Is(err, fs.ErrNotExist) {
		return journal{}, nil
	}
	return j, err
}

func (s *Stager) writeJournal(j journal) error {
	return writeJSON(s.meta("journal.json"), j, !s.NoFsync)
}

// finish records snap as staged and drops the journal and temp files.
func (s *Stager) finish(snap string) error {
	if err := writeJSON(s.meta("state.json"), State{Snapshot: snap, Names: s.namesID()}, !s.NoFsync); err != nil {
		return err
	}
	if err := os.Remove(s.meta("journal.json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	os.RemoveAll(s.meta("moving"))
	return os.RemoveAll(s.meta("tmp"))
}

// prepare makes the bookkeeping directories and sweeps temp files a killed
// run left behind (they were never renamed into place).
func (s *Stager) prepare() error {
	if err := os.RemoveAll(s.meta("tmp")); err != nil {
		return err
	}
	for _, d := range []string{s.meta("tmp"), s.meta("moving")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return s.saveNamesKey()
}
