package activities

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"zcloud/contract"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// HoldBase puts Tag on Snapshot (so no one can destroy the next incremental
// base by accident) and releases Tag from the dataset's older snapshots.
// Holding an already held snapshot and releasing an absent tag are fine, so
// the activity can be retried.
func (a *Activities) HoldBase(ctx context.Context, req contract.HoldRequest) error {
	if err := a.allowHold(req.Snapshot, req.Tag); err != nil {
		return err
	}
	tag, err := zfsname.ParseHoldTag(req.Tag)
	if err != nil {
		return permanent(contract.ErrTypeInvalidName, err)
	}
	z := zfsexec.ZFS{R: a.Local}
	if err := z.Hold(ctx, tag, false, req.Snapshot); err != nil && !errors.Is(err, zfsexec.ErrExists) {
		return classify(fmt.Errorf("hold %s: %w", req.Snapshot, err))
	}
	// Only snapshots that hold anything can hold our tag: one `zfs get`
	// instead of a release per snapshot.
	counts, err := z.HoldCounts(ctx, req.Snapshot.Dataset(), false)
	if err != nil {
		return classify(err)
	}
	for _, h := range counts {
		if h.Snapshot == req.Snapshot || h.Holds == 0 {
			continue
		}
		if err := z.Release(ctx, tag, false, h.Snapshot); err != nil && !errors.Is(err, zfsexec.ErrHoldNotFound) {
			a.Log.Warn("release old base", zap.String("snapshot", h.Snapshot.String()), zap.Error(err))
		}
	}
	return nil
}
