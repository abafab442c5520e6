package replication

import "strings"

// A cursor is the bookmark a successful send leaves on the source for its
// target: bookmark src#zcloud-TARGET:SNAP of the snapshot SNAP it sent. It
// outlives the snapshot, so when a prune destroys the newest common
// snapshot the next send can still go incremental from the bookmark
// (PlanSend's FromBookmark) instead of resending everything. One cursor per
// target is kept (like the hold zcloud-TARGET): a newer one makes the older
// stale. Target names cannot contain ':' (config.ValidTargetName), so one
// target's prefix never matches another's.

// CursorName is the bookmark name (after '#') of target's cursor at snap.
func CursorName(target, snap string) string { return cursorPrefix(target) + snap }

func cursorPrefix(target string) string { return "zcloud-" + target + ":" }

// StaleCursors picks, from the source's bookmark names (after '#'),
// target's cursors other than keep: what to destroy once keep exists.
// Other targets' cursors and bookmarks zcloud did not make stay.
func StaleCursors(target, keep string, bookmarks []string) []string {
	var stale []string
	for _, b := range bookmarks {
		if b != keep && strings.HasPrefix(b, cursorPrefix(target)) {
			stale = append(stale, b)
		}
	}
	return stale
}
