package workflows

import (
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

// The SDK fails a workflow task whose goroutine runs 1 s without yielding
// (TMPRL1101 "potential deadlock"). On a loaded CI machine a correct
// workflow can be descheduled that long, so the unit tests and replays
// here allow a minute: a real deadlock still fails, a busy machine does not.

// newTestEnv is s.NewTestWorkflowEnvironment for a loaded machine.
func newTestEnv(s *testsuite.WorkflowTestSuite) *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute,
		Interceptors: []interceptor.WorkerInterceptor{NewInterceptor(nil)}}) // as the worker runs them
	return env
}

// newReplayer is worker.NewWorkflowReplayer for a loaded machine.
func newReplayer() worker.WorkflowReplayer {
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{DisableDeadlockDetection: true,
		Interceptors: []interceptor.WorkerInterceptor{NewInterceptor(nil)}})
	if err != nil {
		panic(err)
	}
	return r
}
