// Package replication is how one dataset reaches a target. PlanSend
// decides what to send: a pure planner from the source's and the target's
// snapshots (matched by GUID, since names can be reused), the source's
// bookmarks and the target's resume token to a send plan, or a typed
// conflict that retrying can never resolve. Pipe joins `zfs send` to the
// receive side, and Parallel is that side over the encrypted parallel
// stream (receiver installed by SHA-256). The SendSnapshots activity lists
// both sides, asks PlanSend, and runs the plan through these.
package replication

import (
	"fmt"
	"strings"

	"zcloud/zfsname"
)

// Snapshot is one snapshot as the planner sees it.
type Snapshot struct {
	Name      string // short name, after '@'
	GUID      uint64
	CreateTXG uint64
}

// Input is both sides' state. Snapshot lists are oldest first.
type Input struct {
	Source      zfsname.Dataset
	To          string // the source snapshot (short name) the target must reach
	SourceSnaps []Snapshot
	// SourceBookmarks (Name after '#'; a bookmark keeps its snapshot's
	// GUID and createtxg) stand in for pruned snapshots as incremental
	// bases. Empty where the ZFS has no bookmarks.
	SourceBookmarks []Snapshot
	Target          zfsname.Dataset
	TargetExists    bool
	TargetSnaps     []Snapshot
	ResumeToken     string // the target's receive_resume_token, "" for none
}

// Kind is what a plan sends.
type Kind string

const (
	Full        Kind = "full"        // the target dataset does not exist: send To whole
	Incremental Kind = "incremental" // send -I From..To; receive -F rolls back stray changes
	Resume      Kind = "resume"      // finish the interrupted receive from its token
	// FromBookmark: the newest common snapshot was pruned on the source but
	// its bookmark is there: send -i #From..To. ZFS cannot send the
	// snapshots in between from a bookmark (-I), so To is the first source
	// snapshot after the bookmark; the next plan (an Incremental from To)
	// carries on to the requested snapshot.
	FromBookmark Kind = "incremental from bookmark"
	UpToDate     Kind = "up to date" // the target already has To: nothing to send
)

// Plan is what to send.
type Plan struct {
	Kind        Kind
	From        Snapshot // Incremental: the newest common snapshot; FromBookmark: its bookmark
	To          Snapshot // FromBookmark: the first hop, which may be older than Input.To
	ResumeToken string   // Resume
}

// ConflictKind names why no plan exists.
type ConflictKind string

const (
	// MissingSnapshot: To is not on the source.
	MissingSnapshot ConflictKind = "missing snapshot"
	// NoCommonSnapshot: the target dataset exists but shares no snapshot
	// with the source (e.g. the source pruned every snapshot the target
	// has, or the target is another dataset).
	NoCommonSnapshot ConflictKind = "no common snapshot"
	// Diverged: the target has snapshots newer than the newest common one
	// that the source does not have (made on the target, or pruned on the
	// source after they were sent); an incremental cannot apply on top.
	Diverged ConflictKind = "diverged"
	// TargetNewer: the target already has a common snapshot newer than To.
	TargetNewer ConflictKind = "target newer"
)

// Conflict is a state no send can resolve without someone deciding what
// to destroy. Retrying cannot change it.
type Conflict struct {
	Kind   ConflictKind
	Input  Input
	Common Snapshot // Diverged, TargetNewer: the newest common snapshot
	Extra  []string // Diverged: the target's snapshots after Common, not on the source
}

func (c *Conflict) Error() string {
	in := c.Input
	switch c.Kind {
	case MissingSnapshot:
		return fmt.Sprintf("snapshot %s@%s does not exist", in.Source, in.To)
	case NoCommonSnapshot:
		return fmt.Sprintf("target dataset %s exists but shares no snapshot with %s: refusing to overwrite it (destroy or rename it to start over)", in.Target, in.Source)
	case Diverged:
		return fmt.Sprintf("target dataset %s has diverged from %s: after the newest common snapshot @%s it has %s, which %s does not have; destroy those on the target (or rename the dataset) to replicate again",
			in.Target, in.Source, c.Common.Name, "@"+strings.Join(c.Extra, ", @"), in.Source)
	case TargetNewer:
		return fmt.Sprintf("target %s already has %s, newer than %s", in.Target, c.Common.Name, in.To)
	}
	return string(c.Kind)
}

// PlanSend decides what brings in.Target up to in.To.
func PlanSend(in Input) (Plan, error) {
	var to *Snapshot
	for i := range in.SourceSnaps {
		if in.SourceSnaps[i].Name == in.To {
			to = &in.SourceSnaps[i]
		}
	}
	if to == nil {
		return Plan{}, &Conflict{Kind: MissingSnapshot, Input: in}
	}
	switch {
	case in.ResumeToken != "":
		return Plan{Kind: Resume, To: *to, ResumeToken: in.ResumeToken}, nil
	case !in.TargetExists:
		return Plan{Kind: Full, To: *to}, nil
	}
	onSource, bookmarked := map[uint64]Snapshot{}, map[uint64]Snapshot{}
	for _, s := range in.SourceSnaps {
		onSource[s.GUID] = s
	}
	for _, b := range in.SourceBookmarks {
		bookmarked[b.GUID] = b
	}
	// The newest target snapshot that the source also has.
	var extra []string
	for i := len(in.TargetSnaps) - 1; i >= 0; i-- {
		t := in.TargetSnaps[i]
		if t.GUID == to.GUID {
			return Plan{Kind: UpToDate, To: *to}, nil
		}
		common, ok := onSource[t.GUID]
		bm, isBookmark := bookmarked[t.GUID]
		if !ok && isBookmark {
			// The snapshot is pruned on the source; its bookmark is the
			// base, reported under the target's snapshot name for the
			// conflicts below.
			common = Snapshot{Name: t.Name, GUID: bm.GUID, CreateTXG: bm.CreateTXG}
		}
		if !ok && !isBookmark {
			extra = append([]string{t.Name}, extra...)
			continue
		}
		switch {
		case common.CreateTXG > to.CreateTXG:
			return Plan{}, &Conflict{Kind: TargetNewer, Input: in, Common: common}
		case len(extra) > 0:
			return Plan{}, &Conflict{Kind: Diverged, Input: in, Common: common, Extra: extra}
		case ok:
			return Plan{Kind: Incremental, From: common, To: *to}, nil
		}
		return Plan{Kind: FromBookmark, From: bm, To: firstAfter(in.SourceSnaps, bm.CreateTXG, *to)}, nil
	}
	return Plan{}, &Conflict{Kind: NoCommonSnapshot, Input: in}
}

// firstAfter is the oldest snapshot in snaps created after txg; to (which
// is) when none is older.
func firstAfter(snaps []Snapshot, txg uint64, to Snapshot) Snapshot {
	first := to
	for _, s := range snaps {
		if s.CreateTXG > txg && s.CreateTXG < first.CreateTXG {
			first = s
		}
	}
	return first
}
