package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"zcloud/activities"
	"zcloud/contract"
)

// stagingEnv mocks the staging activities; stageFails makes the first
// attempts of StageSnapshot fail as a killed worker's attempts do.
func stagingEnv(t *testing.T, plan activities.StagingPlan, stageErrs ...error) (*testsuite.TestWorkflowEnvironment, *[]string) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var mu sync.Mutex
	var order []string
	log := func(x string) { mu.Lock(); order = append(order, x); mu.Unlock() }
	env.OnActivity(acts.PlanStaging, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.StagingPlanRequest) (activities.StagingPlan, error) {
		log("plan " + req.Source.String() + " -> " + req.Dataset.String())
		return plan, nil
	})
	attempt := 0
	env.OnActivity(acts.StageSnapshot, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.StageRequest) (activities.StagingReport, error) {
		log("stage " + req.Action + " " + req.From + ".." + req.To)
		attempt++
		if attempt <= len(stageErrs) {
			return activities.StagingReport{}, stageErrs[attempt-1]
		}
		return activities.StagingReport{Snapshot: req.To, Files: 3}, nil
	})
	env.OnActivity(acts.SnapshotStaging, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.StagingSnapshotRequest) error {
		log("snapshot " + req.Snapshot.String())
		return nil
	})
	env.OnActivity(acts.HoldBase, mock.Anything, mock.Anything).Return(func(_ context.Context, req contract.HoldRequest) error {
		log("hold " + req.Snapshot.String() + " " + req.Tag)
		return nil
	})
	return env, &order
}

var stagingIn = StagingInput{Source: "tank/data", Dataset: "tank/stg/data"}

func TestStagingIncrementalThenSnapshotAndHold(t *testing.T) {
	env, order := stagingEnv(t, activities.StagingPlan{Action: activities.StagingIncremental, From: "s1", To: "s2"})
	env.ExecuteWorkflow(Staging, stagingIn)
	var st StagingStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	want := "plan tank/data -> tank/stg/data|stage incremental s1..s2|snapshot tank/stg/data@s2|hold tank/data@s2 zcloud-staging"
	if got := strings.Join(*order, "|"); got != want {
		t.Fatalf("steps:\n%s\nwant:\n%s", got, want)
	}
	if st.Phase != PhaseDone || st.Report == nil || st.Report.Files != 3 {
		t.Fatalf("status %+v", st)
	}
}

// A worker killed twice during staging: the attempts fail (heartbeat
// timeouts), the retries run the same request (the engine resumes from
// its journal), and the run finishes.
func TestStagingRetriesKilledAttempts(t *testing.T) {
	env, order := stagingEnv(t, activities.StagingPlan{Action: activities.StagingFull, To: "s1"},
		errors.New("worker killed (1)"), errors.New("worker killed (2)"))
	env.ExecuteWorkflow(Staging, stagingIn)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	stages := 0
	for _, o := range *order {
		if o == "stage full ..s1" {
			stages++
		}
	}
	if stages != 3 || !strings.HasSuffix(strings.Join(*order, "|"), "hold tank/data@s1 zcloud-staging") {
		t.Fatalf("steps %q", *order)
	}
}

// Nothing new: no staging, but the snapshot and hold are (re)asserted.
func TestStagingSkipStillSnapshotsAndHolds(t *testing.T) {
	env, order := stagingEnv(t, activities.StagingPlan{Action: activities.StagingSkip, From: "s2", To: "s2"})
	env.ExecuteWorkflow(Staging, stagingIn)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	want := "plan tank/data -> tank/stg/data|snapshot tank/stg/data@s2|hold tank/data@s2 zcloud-staging"
	if got := strings.Join(*order, "|"); got != want {
		t.Fatalf("steps %s", got)
	}
}

// A permanent failure (unreadable entries after every retry, a wrong
// base) ends the run with the message, and no snapshot or hold moves.
func TestStagingPermanentFailure(t *testing.T) {
	env, order := stagingEnv(t, activities.StagingPlan{Action: activities.StagingFull, To: "s1"},
		temporal.NewNonRetryableApplicationError(`staging: 1 entries could not be staged: "secret": unreadable`, "StagingFailed", nil))
	env.ExecuteWorkflow(Staging, stagingIn)
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), `"secret": unreadable`) {
		t.Fatalf("want the failure list, got %v", err)
	}
	for _, o := range *order {
		if strings.HasPrefix(o, "hold") || strings.HasPrefix(o, "snapshot") {
			t.Fatalf("a failed run moved on: %q", *order)
		}
	}
	env2, _ := stagingEnv(t, activities.StagingPlan{})
	env2.ExecuteWorkflow(Staging, StagingInput{Source: "tank/a;rm", Dataset: "tank/b"})
	if err := env2.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "input") {
		t.Fatalf("bad name: %v", err)
	}
}
