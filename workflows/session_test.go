package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"zcloud/activities"
	"zcloud/contract"
)

// sessionMocks records the session's activity calls in order.
type sessionMocks struct {
	mu       sync.Mutex
	calls    []string
	launches []contract.LaunchRequest
	hosts    map[string]string // instance id -> address
}

func (m *sessionMocks) host(instance string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hosts[instance]
}

func (m *sessionMocks) add(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, s)
}

func (m *sessionMocks) joined() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.calls, ",")
}

func twoReplications(market string) contract.SessionPlan {
	return contract.SessionPlan{Target: "t", Mode: "launch-terminate", Market: market, SpotInterruptions: 1, Parallelism: 2,
		Pool: "backup", UnlockMethod: "command", SSHTimeout: time.Minute, SpotPollInterval: time.Second, Notify: true,
		Replications: []contract.PlannedReplication{{Source: "tank/a", TargetDataset: "backup/a"}, {Source: "tank/b", TargetDataset: "backup/b"}}}
}

// mockSession wires every session activity; unlockErr fails the unlock.
func mockSession(env *testsuite.TestWorkflowEnvironment, plan contract.SessionPlan, unlockErr error, notice bool) *sessionMocks {
	var a *activities.Activities
	m := &sessionMocks{}
	env.OnActivity(a.PlanSession, mock.Anything, "t").Return(plan, nil)
	env.OnActivity(a.LaunchInstance, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.LaunchRequest) (contract.SessionInstance, error) {
		m.mu.Lock()
		m.launches = append(m.launches, r)
		n := len(m.launches)
		m.mu.Unlock()
		m.add("launch")
		market, host := contract.MarketSpot, "spot-host"
		if r.OnDemand || plan.Market != "spot" {
			market, host = contract.MarketOnDemand, "od-host"
		}
		id := "i-" + string(rune('0'+n))
		m.mu.Lock()
		if m.hosts == nil {
			m.hosts = map[string]string{}
		}
		m.hosts[id] = host
		m.mu.Unlock()
		return contract.SessionInstance{Instance: contract.Instance{ID: id, Type: "t3.micro", Market: market},
			At: contract.TargetAddr{Instance: id, Host: host, HostKey: "ssh-ed25519 AAAA"}}, nil
	})
	step := func(name string, err error) func(context.Context, contract.SessionStep) error {
		return func(_ context.Context, s contract.SessionStep) error { m.add(name + "@" + s.At.Host); return err }
	}
	env.OnActivity(a.WaitSSH, mock.Anything, mock.Anything).Return(step("ssh", nil))
	env.OnActivity(a.Unlock, mock.Anything, mock.Anything).Return(step("unlock", unlockErr))
	env.OnActivity(a.ImportPool, mock.Anything, mock.Anything).Return(step("import", nil))
	env.OnActivity(a.ExportPool, mock.Anything, mock.Anything).Return(step("export", nil))
	env.OnActivity(a.Lock, mock.Anything, mock.Anything).Return(step("lock", nil))
	env.OnActivity(a.ReleaseInstance, mock.Anything, mock.Anything).Return(func(_ context.Context, r contract.ReleaseRequest) error {
		m.add("release " + r.InstanceID)
		return nil
	})
	env.OnActivity(a.SessionCost, mock.Anything, mock.Anything).Return(contract.CostReport{Line: "1 instance(s), $0.01"}, nil)
	env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, e contract.NotifyEvent) error {
		m.add("notify")
		return nil
	})
	// The watcher: a notice one minute into the spot instance's transfers.
	if notice {
		env.OnActivity(a.WatchSpot, mock.Anything, mock.Anything).After(time.Minute).Return(&contract.SpotNotice{Action: "terminate"}, nil)
	} else {
		env.OnActivity(a.WatchSpot, mock.Anything, mock.Anything).After(48*time.Hour).Return(nil, nil)
	}
	// Replicate children: on the spot instance a send that takes an hour
	// (until cancelled); elsewhere done at once.
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in ReplicateInput) (ReplicateResult, error) {
		// The child names the instance only; the worker finds its address.
		if in.TargetHost != "" || in.TargetHostKey != "" {
			return ReplicateResult{}, errors.New("the session passed an address or host key to its child")
		}
		host := m.host(in.TargetInstance)
		m.add("replicate " + in.Source + "@" + host + " snap=" + in.Snapshot)
		if host == "spot-host" {
			if err := workflow.Sleep(ctx, time.Hour); err != nil {
				return ReplicateResult{}, err
			}
		}
		return ReplicateResult{Send: contract.SendReport{Full: true, Bytes: 10}}, nil
	}, workflow.RegisterOptions{Name: ReplicateName})
	return m
}

func newSessionEnv() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := newTestEnv(&s)
	env.RegisterActivity(&activities.Activities{})
	env.RegisterWorkflowWithOptions(Session, workflow.RegisterOptions{Name: SessionName})
	return env
}

func TestSessionRunsStepsInOrderAndReleases(t *testing.T) {
	env := newSessionEnv()
	m := mockSession(env, twoReplications("on-demand"), nil, false)
	env.ExecuteWorkflow(Session, SessionInput{Target: "t"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SessionResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	got := m.joined()
	for _, want := range []string{"launch,ssh@od-host,unlock@od-host,import@od-host,replicate", "export@od-host,lock@od-host,release i-1"} {
		if !strings.Contains(got, want) {
			t.Errorf("calls %s, want %s", got, want)
		}
	}
	if strings.Contains(got, "notify") {
		t.Error("a good session notified")
	}
	if res.Status.Phase != PhaseDone || res.Status.Cost == "" || len(res.Status.Datasets) != 2 || res.Status.Datasets[0].State != "done" {
		t.Errorf("result %+v", res.Status)
	}
}

func TestSessionFailedUnlockStillReleasesAndNotifies(t *testing.T) {
	env := newSessionEnv()
	bad := temporal.NewNonRetryableApplicationError("unlock command refused the key", contract.ErrTypeKeyIncorrect, nil)
	m := mockSession(env, twoReplications("on-demand"), bad, false)
	env.ExecuteWorkflow(Session, SessionInput{Target: "t"})
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != contract.ErrTypeKeyIncorrect || !strings.Contains(err.Error(), "session t: unlock: unlock command refused the key") {
		t.Fatalf("error %v", err)
	}
	got := m.joined()
	if strings.Contains(got, "import") || strings.Contains(got, "export") || strings.Contains(got, "replicate") {
		t.Errorf("calls %s: nothing after a failed unlock but the teardown", got)
	}
	if !strings.Contains(got, "lock@od-host,release i-1") || !strings.HasSuffix(got, "notify") {
		t.Errorf("calls %s, want lock, release, notify", got)
	}
}

func TestSessionSpotNoticeMovesToOnDemandReplacement(t *testing.T) {
	env := newSessionEnv()
	m := mockSession(env, twoReplications("spot"), nil, true)
	env.ExecuteWorkflow(Session, SessionInput{Target: "t"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res SessionResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	st := res.Status
	if st.Interruptions != 1 || len(st.Instances) != 2 || !st.Instances[0].Interrupted || st.Instances[1].Market != "on-demand" {
		t.Fatalf("status %+v", st)
	}
	if len(m.launches) != 2 || m.launches[0].OnDemand || !m.launches[1].OnDemand || m.launches[0].ClientToken == m.launches[1].ClientToken {
		t.Errorf("launches %+v", m.launches)
	}
	got := m.joined()
	// The interrupted instance is exported, locked and released before
	// the replacement is launched; the replacement continues the same
	// snapshot.
	if !strings.Contains(got, "export@spot-host,lock@spot-host,release i-1,launch,ssh@od-host") {
		t.Errorf("calls %s", got)
	}
	for _, d := range st.Datasets {
		if d.State != "done" || d.Runs != 2 {
			t.Errorf("dataset %+v", d)
		}
		if !strings.Contains(got, "replicate "+d.Source+"@od-host snap="+st.Snapshot) || !strings.Contains(got, "replicate "+d.Source+"@spot-host snap="+st.Snapshot) {
			t.Errorf("calls %s: %s not continued on the same snapshot", got, d.Source)
		}
	}
	if !strings.HasSuffix(got, "export@od-host,lock@od-host,release i-2") {
		t.Errorf("calls %s", got)
	}
}

func TestSessionCancelledMidReplicationCompensates(t *testing.T) {
	env := newSessionEnv()
	plan := twoReplications("spot")
	plan.SpotInterruptions = 5
	m := mockSession(env, plan, nil, false)
	env.RegisterDelayedCallback(env.CancelWorkflow, 10*time.Minute)
	env.ExecuteWorkflow(Session, SessionInput{Target: "t"})
	err := env.GetWorkflowError()
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("want cancelled, got %v", err)
	}
	got := m.joined()
	if !strings.Contains(got, "export@spot-host,lock@spot-host,release i-1") || len(m.launches) != 1 {
		t.Errorf("calls %s: the cancellation must export, lock and release", got)
	}
}
