// Package workflows holds zcloud's deterministic workflow code: no I/O, no
// time.Now, no goroutines. Every side effect is an activity, scheduled by
// its name in package contract (which also holds the payload types); this
// package never imports the activities that implement them.
package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
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
