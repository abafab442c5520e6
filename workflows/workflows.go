// Package workflows holds zcloud's deterministic workflow code: no I/O, no
// time.Now, no goroutines. Every side effect is an activity, scheduled by
// its name in package contract (which also holds the payload types); this
// package never imports the activities that implement them.
package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"zcloud/searchattr"
)

// DefaultTaskQueue is the task queue when the config names none.
const DefaultTaskQueue = "zcloud"

// streamHeartbeatTimeout is the default heartbeat timeout of the long byte
// streams (send, upload, restore, verify). They heartbeat every 2 s and the
// SDK passes one to the server at most every 0.8 x this (9.6 s), so the
// Web UI's pending activity shows progress about 10 s old at most, and a
// stream whose worker died is retried 12 s later. The CLI reads progress
// live from the worker instead (package progress).
const streamHeartbeatTimeout = 12 * time.Second

// Registration pairs a workflow function with its registered name.
type Registration struct {
	Name string
	Fn   any
}

// All lists every workflow the worker registers. Each feature adds its line.
func All() []Registration {
	return []Registration{
		{ReplicateName, Replicate},
		{SnapshotPolicyName, SnapshotPolicy},
		{PrunePolicyName, PrunePolicy},
		{PolicyPlanName, PolicyPlan},
		{PoolCreateName, PoolCreate}, {PoolGrowName, PoolGrow}, {PoolScrubName, PoolScrub}, {PoolDestroyName, PoolDestroy}, {PoolSessionName, PoolSession},
		{ArchiveName, Archive}, {RestoreName, Restore}, {VerifyName, ArchiveVerify}, {ArchiveDescribeName, ArchiveDescribe}, {ArchiveTickName, ArchiveTick},
		{SessionName, Session}, {CatalogName, Catalog},
		{StagingName, Staging},
	}
}

// Register registers every workflow on w.
func Register(w interface {
	RegisterWorkflowWithOptions(any, workflow.RegisterOptions)
}) {
	for _, r := range All() {
		w.RegisterWorkflowWithOptions(r.Fn, workflow.RegisterOptions{Name: r.Name})
	}
}

// JobKind is the kind of job (searchattr's ZcloudKind value and the
// metrics' kind label) a workflow type does; "" for a type zcloud does
// not start.
func JobKind(workflowType string) string {
	switch workflowType {
	case ReplicateName:
		return searchattr.KindReplicate
	case SessionName:
		return searchattr.KindSession
	case ArchiveName, ArchiveTickName:
		return searchattr.KindArchive
	case RestoreName:
		return searchattr.KindRestore
	case VerifyName:
		return searchattr.KindDrill
	case PoolScrubName:
		return searchattr.KindScrub
	case PoolGrowName:
		return searchattr.KindGrow
	case PoolCreateName, PoolDestroyName:
		return searchattr.KindPool
	case SnapshotPolicyName:
		return searchattr.KindSnapshot
	case PrunePolicyName:
		return searchattr.KindPrune
	case PolicyPlanName:
		return searchattr.KindPlan
	case StagingName:
		return searchattr.KindStaging
	case CatalogName, ArchiveDescribeName:
		return searchattr.KindCatalog
	}
	return ""
}

// childJob gives a child run its job's search attributes and summary, as
// the CLI does for the runs it starts. Only when the parent has attributes
// itself: a run started without them (a schedule created before zcloud
// set any, on a namespace where they are not registered) must not fail
// to start its children on an unknown attribute.
func childJob(ctx workflow.Context, o workflow.ChildWorkflowOptions, j searchattr.Job) workflow.ChildWorkflowOptions {
	o.StaticSummary = j.Summary()
	if workflow.GetTypedSearchAttributes(ctx).Size() > 0 {
		o.TypedSearchAttributes = j.Attributes()
	}
	return o
}
