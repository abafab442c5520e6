package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"zcloud/archive"
	"zcloud/cloud/objstore"
	"zcloud/contract"
	"zcloud/zfsexec"
	"zcloud/zfsname"
)

// DrillReportKey is where a drill's report is kept in the store.
func DrillReportKey(prefix string, ds zfsname.Dataset, started time.Time) string {
	return path.Join(archive.DatasetPrefix(prefix, ds), "drills", started.UTC().Format("20060102T150405Z")+".json")
}

// ClearDrillScratch destroys a deep drill's scratch dataset if it exists
// (left by an earlier drill that crashed), so a drill never passes on
// snapshots it did not receive itself.
func (a *Activities) ClearDrillScratch(ctx context.Context, req contract.DrillScratchRequest) error {
	z, err := a.drillScratch(ctx, req.Scratch)
	if err != nil {
		return err
	}
	exists, err := z.Exists(ctx, req.Scratch)
	if err != nil || !exists {
		return classify(err)
	}
	return classify(z.DestroyDataset(ctx, req.Scratch, true))
}

// FinishDeepDrill checks that the scratch dataset holds exactly the
// chain's snapshots (by GUID), destroys it, and saves the report (with the
// check's result) in the store. It returns the final report.
func (a *Activities) FinishDeepDrill(ctx context.Context, req contract.DrillScratchRequest) (contract.DrillReport, error) {
	var rep contract.DrillReport
	if req.Report != nil {
		rep = *req.Report
	}
	z, err := a.drillScratch(ctx, req.Scratch)
	if err != nil {
		return rep, err
	}
	exists, err := z.Exists(ctx, req.Scratch)
	if err != nil {
		return rep, classify(err)
	}
	if exists {
		if rep.Passed {
			have, err := z.ListSnapshots(ctx, req.Scratch)
			if err != nil {
				return rep, classify(err)
			}
			for _, g := range req.Expect {
				if _, ok := snapByGUID(have, g); !ok {
					rep.Passed, rep.Result = false, fmt.Sprintf("the received scratch %s lacks the snapshot with GUID %d", req.Scratch, g)
					break
				}
			}
		}
		if err := z.DestroyDataset(ctx, req.Scratch, true); err != nil {
			return rep, classify(err)
		}
	} else if rep.Passed {
		rep.Passed, rep.Result = false, fmt.Sprintf("scratch %s does not exist after the receive", req.Scratch)
	}
	if req.Report == nil {
		return rep, nil
	}
	st, err := a.archiveStore(ctx)
	if err != nil {
		return rep, err
	}
	ds, err := zfsname.ParseDataset(rep.Dataset)
	if err != nil {
		return rep, permanent(contract.ErrTypeInvalidName, err)
	}
	b, err := json.MarshalIndent(rep, "", " ")
	if err != nil {
		return rep, err
	}
	if _, err := st.Put(ctx, DrillReportKey(a.archivePrefix(), ds, rep.Started), bytes.NewReader(b), int64(len(b)), objstore.PutOptions{}); err != nil {
		return rep, archiveErr(fmt.Errorf("saving the drill report: %w", err))
	}
	if rep.Passed {
		a.Metrics.DeepDrillDone(rep.Dataset, rep.Started.Add(time.Duration(rep.Seconds*float64(time.Second))))
	}
	return rep, nil
}

// LoadDeepDrillMetrics (a function: every method of Activities is an
// activity) sets the deep-drill gauge of every archived dataset
// from the reports kept in the store, so a restarted worker shows when the
// newest passed drill ended, not nothing. Best effort: a store it cannot
// read is logged and skipped.
func LoadDeepDrillMetrics(ctx context.Context, a *Activities) {
	if a.Metrics == nil || len(a.Config.Archive.Datasets) == 0 {
		return
	}
	st, err := a.archiveStore(ctx)
	if err != nil {
		a.Log.Warn("deep drill metrics: archive store", zap.Error(err))
		return
	}
	for _, d := range a.Config.Archive.Datasets {
		ds, err := zfsname.ParseDataset(d.Dataset)
		if err != nil {
			continue
		}
		objs, err := st.List(ctx, path.Dir(DrillReportKey(a.archivePrefix(), ds, time.Time{}))+"/")
		if err != nil {
			a.Log.Warn("deep drill metrics: listing the drill reports", zap.String("dataset", ds.String()), zap.Error(err))
			continue
		}
		// Newest first (the keys are start times); the first passed one counts.
		for i := len(objs) - 1; i >= 0; i-- {
			rep, err := readDrillReport(ctx, st, objs[i].Key)
			if err == nil && rep.Passed {
				a.Metrics.DeepDrillDone(ds.String(), rep.Started.Add(time.Duration(rep.Seconds*float64(time.Second))))
				break
			}
		}
	}
}

func readDrillReport(ctx context.Context, st objstore.Store, key string) (contract.DrillReport, error) {
	var rep contract.DrillReport
	rc, err := st.Get(ctx, key, objstore.Range{})
	if err != nil {
		return rep, err
	}
	defer rc.Close()
	err = json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&rep)
	return rep, err
}

func (a *Activities) drillScratch(ctx context.Context, ds zfsname.Dataset) (zfsexec.ZFS, error) {
	if !strings.HasPrefix(path.Base(ds.String()), contract.DrillScratchPrefix) || !strings.Contains(ds.String(), "/") {
		return zfsexec.ZFS{}, permanent(contract.ErrTypeInvalidName, fmt.Errorf("drill scratch %s: its name must start with %s (a drill destroys it)", ds, contract.DrillScratchPrefix))
	}
	caps, err := a.capabilities(ctx, a.Local)
	if err != nil {
		return zfsexec.ZFS{}, classify(err)
	}
	return zfsexec.ZFS{R: a.Local, Caps: caps}, nil
}
