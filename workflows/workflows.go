// Package workflows holds zcloud's deterministic workflow code: no I/O, no
// time.Now, no goroutines. Every side effect is an activity, scheduled by
// its name in package contract (which also holds the payload types); this
// package never imports the activities that implement them.
package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// DefaultTaskQueue is the task queue when the config names none.
const DefaultTaskQueue = "zcloud"

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
		{PoolCreateName, PoolCreate}, {PoolGrowName, PoolGrow}, {PoolScrubName, PoolScrub}, {PoolDestroyName, PoolDestroy},
		{ArchiveName, Archive}, {RestoreName, Restore}, {VerifyName, ArchiveVerify}, {ArchiveDescribeName, ArchiveDescribe}, {ArchiveTickName, ArchiveTick},
		{SessionName, Session},
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
