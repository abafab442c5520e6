package staging

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// journalEvery is how many finished files a full run records at a time: a
// rerun after a crash re-encrypts at most about this many.
const journalEvery = 256

// Full stages every file of the source (the snapshot snap) into the staging
// directory and removes staged entries the source lacks. A rerun after a
// crash skips the files the journal records as done.
func (s *Stager) Full(ctx context.Context, snap string) (Report, error) {
	st, err := ReadState(s.Dir)
	if err != nil {
		return Report{}, err
	}
	// A copy staged with other names is restaged whole: the walk removes
	// every staged entry the source (under this Stager's names) lacks.
	if st.Snapshot == snap && snap != "" && st.Names == s.namesID() {
		return Report{Snapshot: snap, Already: true}, nil
	}
	if fi, err := os.Stat(s.Source); err != nil || !fi.IsDir() {
		return Report{}, fmt.Errorf("staging: source %s is not a readable directory (%v)", s.Source, err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Report{}, err
	}
	if err := s.prepare(); err != nil {
		return Report{}, err
	}
	j, err := s.readJournal()
	if err != nil {
		return Report{}, err
	}
	if j.Kind != "full" || j.To != snap {
		j = journal{Kind: "full", To: snap}
		if err := s.writeJournal(j); err != nil {
			return Report{}, err
		}
	}
	r := s.start(ctx)

	// The journal's watermark: every file numbered up to it (in the walk's
	// sorted order, the same on every run over one snapshot) is staged.
	var mu sync.Mutex
	finished := map[int]bool{}
	mark, saved := j.Files, j.Files
	save := func() {
		jj := j
		jj.Files = mark
		if err := s.writeJournal(jj); err == nil {
			saved = mark
		}
	}
	r.done = func(seq int) {
		mu.Lock()
		defer mu.Unlock()
		finished[seq] = true
		for finished[mark+1] {
			delete(finished, mark+1)
			mark++
		}
		if mark-saved >= journalEvery {
			save()
		}
	}
	n := 0
	next := func() int { n++; return n }
	skip := func(seq int, _ string) bool { return seq <= j.Files }
	walkErr := r.syncDir("", true, next, skip)
	rep, err := r.wait()
	if walkErr != nil {
		err = walkErr
	}
	mu.Lock()
	save()
	mu.Unlock()
	rep.Snapshot = snap
	if err != nil {
		return rep, err
	}
	return rep, s.finish(snap)
}
