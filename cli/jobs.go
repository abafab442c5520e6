package cli

import (
	"go.temporal.io/sdk/client"

	"zcloud/searchattr"
)

// withJob adds the job's search attributes (ZcloudDataset, ZcloudTarget,
// ZcloudPool, ZcloudKind: the Web UI filters on them) and its one-line
// summary to a workflow start. Every start and schedule of the CLI goes
// through it or scheduledJob.
func withJob(o client.StartWorkflowOptions, j searchattr.Job) client.StartWorkflowOptions {
	o.TypedSearchAttributes = j.Attributes()
	o.StaticSummary = j.Summary()
	return o
}

// scheduledJob is withJob for a schedule's action.
func scheduledJob(a *client.ScheduleWorkflowAction, j searchattr.Job) *client.ScheduleWorkflowAction {
	a.TypedSearchAttributes = j.Attributes()
	a.StaticSummary = j.Summary()
	return a
}
