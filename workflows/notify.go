package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/contract"
	"zcloud/searchattr"
)

// Versions that added a notification (histories recorded before them
// replay without it).
const (
	versionNotifyFailedRun     = "notify-failed-run"
	versionNotifyApprovalWaits = "notify-approval-waits"
)

// notify sends ev through the worker's notifiers (notify: in the config;
// none configured: nothing), best effort: a notifier that fails is logged
// and never fails the run.
func notify(ctx workflow.Context, ev contract.NotifyEvent) {
	if ev.Fields == nil {
		ev.Fields = map[string]string{}
	}
	ev.Fields["workflow_id"] = workflow.GetInfo(ctx).WorkflowExecution.ID
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(actx, contract.Notify, ev).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification not delivered", "subject", ev.Subject, "error", err)
	}
}

// notifyKinds are the jobs whose failure is reported. A session reports
// its own (with its cost line), and so covers its replications; plans and
// the overview's catalog answer the operator who started them.
var notifyKinds = map[string]bool{
	searchattr.KindReplicate: true, searchattr.KindArchive: true, searchattr.KindRestore: true,
	searchattr.KindDrill: true, searchattr.KindScrub: true, searchattr.KindGrow: true, searchattr.KindPool: true,
	searchattr.KindSnapshot: true, searchattr.KindPrune: true, searchattr.KindStaging: true,
}

// notifyFailedRun reports a run that failed, with its cause.
func notifyFailedRun(ctx workflow.Context, job searchattr.Job, cause string) {
	info := workflow.GetInfo(ctx)
	if !notifyKinds[job.Kind] {
		return
	}
	if p := info.ParentWorkflowExecution; p != nil && strings.HasPrefix(p.ID, "session/") {
		return // the session reports
	}
	if workflow.GetVersion(ctx, versionNotifyFailedRun, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	what := job.Summary()
	ev := contract.NotifyEvent{Subject: what + " failed", Body: cause, Severity: contract.SeverityError,
		Fields: map[string]string{"kind": job.Kind}}
	if len(job.Datasets) > 0 {
		ev.Fields["dataset"] = strings.Join(job.Datasets, ",")
	}
	if job.Target != "" {
		ev.Fields["target"] = job.Target
	}
	if job.Pool != "" {
		ev.Fields["pool"] = job.Pool
	}
	notify(ctx, ev)
}

// notifyApprovalWaits tells the operator that a plan waits for a decision
// and until when.
func (g *approvalGate) notifyWaits(ctx workflow.Context, deadline time.Time) {
	if workflow.GetVersion(ctx, versionNotifyApprovalWaits, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	approve := strings.Replace(g.statusCmd, " status", " approve", 1)
	notify(ctx, contract.NotifyEvent{
		Subject:  fmt.Sprintf("%s of %s waits for approval", g.plan, g.dataset),
		Body:     fmt.Sprintf("%s %s of %s waits for an operator until %s (then nothing is destroyed). Look at it with '%s %s', answer with '%s %s' (or --reject).", g.plan, g.planID, g.dataset, deadline.UTC().Format(time.RFC3339), g.statusCmd, g.dataset, approve, g.dataset),
		Severity: contract.SeverityWarning,
		Fields:   map[string]string{"dataset": g.dataset, "plan_id": g.planID},
	})
}
