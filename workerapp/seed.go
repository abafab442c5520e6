package workerapp

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"zcloud/metrics"
	"zcloud/searchattr"
	"zcloud/workflows"
)

// seedWindow is how far back a starting worker looks for finished runs;
// seedMax bounds how many it reads.
const (
	seedWindow = 40 * 24 * time.Hour
	seedMax    = 20000
)

// seedJobMetrics fills the per-job gauges (last success, lag, whether the
// newest run failed) from Temporal's visibility: a restarted worker would
// otherwise forget every job until its next run, and an alert on a lag
// could not fire for a job that stopped running. It reads the finished
// runs of the last seedWindow on its task queue that carry zcloud's search
// attributes and replays them, oldest first, into m (counters stay at
// zero: they count this worker's runs).
func seedJobMetrics(ctx context.Context, cl client.Client, namespace, taskQueue string, m *metrics.Metrics, now time.Time) (int, error) {
	var kinds []string
	for _, k := range []string{searchattr.KindReplicate, searchattr.KindSession, searchattr.KindArchive, searchattr.KindRestore,
		searchattr.KindDrill, searchattr.KindScrub, searchattr.KindGrow, searchattr.KindPool, searchattr.KindSnapshot,
		searchattr.KindPrune, searchattr.KindStaging} {
		kinds = append(kinds, "'"+k+"'")
	}
	// This worker's task queue: several file servers may share a namespace.
	q := fmt.Sprintf("%s IN (%s) AND TaskQueue = '%s' AND ExecutionStatus != 'Running' AND CloseTime > '%s'",
		searchattr.Kind.GetName(), strings.Join(kinds, ", "), taskQueue, now.Add(-seedWindow).UTC().Format(time.RFC3339))
	var runs []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for {
		resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: q, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return 0, fmt.Errorf("list finished runs: %w", err)
		}
		runs = append(runs, resp.GetExecutions()...)
		token = resp.GetNextPageToken()
		if len(token) == 0 || len(runs) >= seedMax {
			break
		}
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].GetCloseTime().AsTime().Before(runs[j].GetCloseTime().AsTime()) })
	for _, x := range runs {
		o := workflows.RunOutcome{Job: jobOf(x), Started: x.GetStartTime().AsTime(), Ended: x.GetCloseTime().AsTime()}
		switch x.GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			o.Outcome = workflows.OutcomeOK
		case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			continue
		default: // failed, timed out, terminated
			o.Outcome = workflows.OutcomeError
		}
		m.Seed(toRun(o))
	}
	return len(runs), nil
}

// jobOf reads a listed run's zcloud search attributes.
func jobOf(x *workflowpb.WorkflowExecutionInfo) searchattr.Job {
	f := x.GetSearchAttributes().GetIndexedFields()
	dc := converter.GetDefaultDataConverter()
	var j searchattr.Job
	if p := f[searchattr.Kind.GetName()]; p != nil {
		_ = dc.FromPayload(p, &j.Kind)
	}
	if p := f[searchattr.Dataset.GetName()]; p != nil {
		_ = dc.FromPayload(p, &j.Datasets)
	}
	if p := f[searchattr.Target.GetName()]; p != nil {
		_ = dc.FromPayload(p, &j.Target)
	}
	if p := f[searchattr.Pool.GetName()]; p != nil {
		_ = dc.FromPayload(p, &j.Pool)
	}
	return j
}
