package activities

import (
	"context"

	"go.uber.org/zap"

	"zcloud/contract"
	"zcloud/replication"
	"zcloud/zfsexec"
)

// keepCursor leaves the target's cursor on the source: a bookmark of the
// snapshot just sent (replication.CursorName), so that a prune of that
// snapshot never forces a full resend; then it destroys the target's older
// cursors so they do not pile up. Only where the source's ZFS has
// bookmarks (zfs-fuse has none). A failure is logged, not returned: the
// target has the data, and without the cursor the next send still plans
// from the snapshots.
func (a *Activities) keepCursor(ctx context.Context, src zfsexec.ZFS, req contract.SendRequest, log *zap.Logger) {
	if !src.Caps.Bookmarks {
		return
	}
	name := replication.CursorName(req.Target, req.Snapshot.Name())
	cursor, err := req.Source.Bookmark(name)
	if err != nil {
		log.Warn("no cursor bookmark: its name is not valid", zap.Error(err))
		return
	}
	bms, err := src.ListBookmarks(ctx, req.Source)
	if err != nil {
		log.Warn("cursor bookmark: list bookmarks", zap.Error(err))
		return
	}
	var names []string
	have := false
	for _, b := range bms {
		names = append(names, b.Bookmark.Name())
		have = have || b.Bookmark == cursor
	}
	if !have {
		if err := src.Bookmark(ctx, req.Snapshot, cursor); err != nil {
			log.Warn("cursor bookmark", zap.String("bookmark", cursor.String()), zap.Error(err))
			return
		}
	}
	for _, old := range replication.StaleCursors(req.Target, name, names) {
		b, err := req.Source.Bookmark(old)
		if err == nil {
			err = src.DestroyBookmark(ctx, b)
		}
		if err != nil {
			log.Warn("destroy old cursor bookmark", zap.String("bookmark", old), zap.Error(err))
		}
	}
}
