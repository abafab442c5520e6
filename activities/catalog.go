package activities

import (
	"context"
	"fmt"
	"time"

	"zcloud/zfsexec"
)

// CatalogTier is where one copy of a dataset lives and its newest snapshot
// there. Time is the snapshot's creation time on the source (a received
// snapshot keeps it), so now-Time is how far the copy lags.
type CatalogTier struct {
	Tier     string    `json:"tier"`                // source, replica, archive
	Where    string    `json:"where,omitempty"`     // replica: TARGET:DATASET
	Snapshot string    `json:"snapshot,omitempty"`  // short name, "" when none
	Time     time.Time `json:"time,omitzero"`       // the snapshot's creation
	Count    int       `json:"count,omitempty"`     // snapshots (streams in the archive)
	Error    string    `json:"error,omitempty"`     // why it could not be read
	Skipped  string    `json:"skipped,omitempty"`   // why it was not looked at
	Bytes    int64     `json:"bytes,omitempty"`     // archive: stored bytes
	Uploaded time.Time `json:"uploaded,omitzero"`   // archive: newest upload
	Target   string    `json:"target,omitempty"`    // replica: the target name
	TargetDS string    `json:"target_ds,omitempty"` // replica: the dataset there
}

// CatalogDataset is every copy of one configured dataset.
type CatalogDataset struct {
	Dataset string        `json:"dataset"`
	Tiers   []CatalogTier `json:"tiers"`
}

// Catalog lists every dataset the config names (replications, policies,
// archive) with its newest snapshot on the source, on each replica reached
// over SSH (ec2 targets are up only during sessions and are skipped) and in
// the archive (read with the host identity). A copy that cannot be read is
// reported in its row, never fails the whole catalog.
func (a *Activities) Catalog(ctx context.Context) ([]CatalogDataset, error) {
	var out []CatalogDataset
	for _, name := range a.Config.Datasets() {
		ds, err := zfsexec.ParseDataset(name)
		if err != nil {
			continue // config validation refused it already
		}
		row := CatalogDataset{Dataset: name}
		src := CatalogTier{Tier: "source"}
		created := map[uint64]time.Time{} // by GUID, for the other tiers' lag
		snaps, err := zfsexec.ZFS{R: a.Local}.ListSnapshots(ctx, ds)
		if err != nil {
			src.Error = err.Error()
		} else {
			for _, s := range snaps {
				created[s.GUID] = time.Unix(s.Creation, 0).UTC()
			}
			fill(&src, snaps)
		}
		row.Tiers = append(row.Tiers, src)
		for _, r := range a.Config.Replications {
			if r.Source != name {
				continue
			}
			row.Tiers = append(row.Tiers, a.catalogReplica(ctx, r.Target, r.TargetDataset))
		}
		if _, ok := a.Config.ArchiveDatasetFor(name); ok {
			row.Tiers = append(row.Tiers, a.catalogArchive(ctx, ds, created))
		}
		out = append(out, row)
	}
	return out, nil
}

func fill(t *CatalogTier, snaps []zfsexec.SnapshotInfo) {
	t.Count = len(snaps)
	if len(snaps) > 0 {
		s := snaps[len(snaps)-1] // oldest first
		t.Snapshot, t.Time = s.Snapshot.Name(), time.Unix(s.Creation, 0).UTC()
	}
}

func (a *Activities) catalogReplica(ctx context.Context, target, dataset string) CatalogTier {
	t := CatalogTier{Tier: "replica", Where: target + ":" + dataset, Target: target, TargetDS: dataset}
	if tc, ok := a.Config.Targets[target]; ok && tc.Kind == "ec2" {
		t.Skipped = "ec2 target: reached only during its session"
		return t
	}
	ds, err := zfsexec.ParseDataset(dataset)
	if err != nil {
		t.Error = err.Error()
		return t
	}
	_, r, err := a.target(ctx, target)
	if err != nil {
		t.Error = err.Error()
		return t
	}
	defer r.Close()
	z := zfsexec.ZFS{R: r}
	if ok, err := z.Exists(ctx, ds); err != nil {
		t.Error = err.Error()
		return t
	} else if !ok {
		return t // nothing replicated yet
	}
	snaps, err := z.ListSnapshots(ctx, ds)
	if err != nil {
		t.Error = err.Error()
		return t
	}
	fill(&t, snaps)
	return t
}

func (a *Activities) catalogArchive(ctx context.Context, ds zfsexec.Dataset, created map[uint64]time.Time) CatalogTier {
	t := CatalogTier{Tier: "archive", Where: a.Config.Archive.Store.Kind}
	sum, err := a.DescribeArchive(ctx, VerifyPlanRequest{Dataset: ds})
	if err != nil {
		t.Error = fmt.Sprint(err)
		return t
	}
	for _, s := range sum.Streams {
		t.Count++
		t.Bytes += s.StoredSize
		if s.Uploaded.After(t.Uploaded) {
			t.Uploaded = s.Uploaded
		}
	}
	if n := len(sum.Streams); n > 0 {
		newest := sum.Streams[n-1]
		t.Snapshot = newest.To.Name
		if c, ok := created[newest.To.GUID]; ok {
			t.Time = c
		} else {
			t.Time = newest.Uploaded // the source no longer has it
		}
	}
	return t
}
