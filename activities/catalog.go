package activities

import (
	"context"
	"fmt"
	"time"

	"zcloud/contract"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// Catalog lists every dataset the config names (replications, policies,
// archive) with its newest snapshot on the source, on each replica reached
// over SSH (ec2 targets are up only during sessions and are skipped) and in
// the archive (read with the host identity). A copy that cannot be read is
// reported in its row, never fails the whole catalog.
func (a *Activities) Catalog(ctx context.Context) ([]contract.CatalogDataset, error) {
	var out []contract.CatalogDataset
	for _, name := range a.Config.Datasets() {
		ds, err := zfsname.ParseDataset(name)
		if err != nil {
			continue // config validation refused it already
		}
		row := contract.CatalogDataset{Dataset: name}
		src := contract.CatalogTier{Tier: "source"}
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

func fill(t *contract.CatalogTier, snaps []zfsexec.SnapshotInfo) {
	t.Count = len(snaps)
	if len(snaps) > 0 {
		s := snaps[len(snaps)-1] // oldest first
		t.Snapshot, t.Time = s.Snapshot.Name(), time.Unix(s.Creation, 0).UTC()
	}
}

func (a *Activities) catalogReplica(ctx context.Context, target, dataset string) contract.CatalogTier {
	t := contract.CatalogTier{Tier: "replica", Where: target + ":" + dataset, Target: target, TargetDS: dataset}
	if tc, ok := a.Config.Targets[target]; ok && tc.Kind == "ec2" {
		t.Skipped = "ec2 target: reached only during its session"
		return t
	}
	ds, err := zfsname.ParseDataset(dataset)
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

func (a *Activities) catalogArchive(ctx context.Context, ds zfsname.Dataset, created map[uint64]time.Time) contract.CatalogTier {
	t := contract.CatalogTier{Tier: "archive", Where: a.Config.Archive.Store.Kind}
	sum, err := a.DescribeArchive(ctx, contract.VerifyPlanRequest{Dataset: ds})
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
