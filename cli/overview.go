package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"zcloud/config"
	"zcloud/contract"
	"zcloud/retention"
	"zcloud/searchattr"
	"zcloud/workflows"
)

// Overview is `zcloud status` without an argument: every configured
// dataset's copies across tiers (source, replicas, archive) with their
// newest snapshot and its age, the job that feeds each copy, and warnings.
type Overview struct {
	Time     time.Time         `json:"time"`
	Datasets []OverviewDataset `json:"datasets"`
	Warnings []string          `json:"warnings"`
}

// OverviewDataset is one row of the table.
type OverviewDataset struct {
	Dataset string         `json:"dataset"`
	Copies  []OverviewCopy `json:"copies"`
}

// OverviewCopy is one tier of a dataset with the job that feeds it.
type OverviewCopy struct {
	contract.CatalogTier
	// AgeSeconds is now minus the newest snapshot's creation; absent when
	// the copy holds no snapshot.
	AgeSeconds *float64  `json:"age_seconds,omitempty"`
	Job        *JobState `json:"job,omitempty"`
	// Schedule feeds this copy (the source's snapshot policy, the
	// archive's schedule, an ec2 target's session); NextRun is when it
	// runs next (absent when no schedule exists or it is paused).
	Schedule string    `json:"schedule,omitempty"`
	NextRun  time.Time `json:"next_run,omitzero"`
	// From says where an ec2 replica's newest snapshot was read: the
	// newest session that replicated this dataset (the instance is down
	// between sessions).
	From string `json:"from,omitempty"`
}

// JobState is what the job's recent runs say (from Temporal's visibility).
type JobState struct {
	ID          string    `json:"id"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// Cause of the newest failure.
	Cause string `json:"cause,omitempty"`
	// FailuresInARow counts failed runs since the newest success.
	FailuresInARow int       `json:"failures_in_a_row,omitempty"`
	Running        bool      `json:"running,omitempty"`
	RunningSince   time.Time `json:"running_since,omitzero"`
	// Progress of the running run: its phase, then each pending step with
	// its bytes (live from the worker when reachable, else the last
	// heartbeat), and its attempt and last failure while it retries.
	Progress string `json:"progress,omitempty"`
}

// overviewLimits say when a copy or a job deserves a warning.
type overviewLimits struct {
	maxAge      time.Duration // replica and archive copies
	maxFailures int           // failed runs in a row
}

// buildOverview reads the catalog on the worker and the jobs' runs from
// Temporal's visibility.
func buildOverview(ctx context.Context, cl client.Client, cfg *config.Config, now time.Time, lim overviewLimits) (Overview, error) {
	ov := Overview{Time: now.UTC()}
	run, err := cl.ExecuteWorkflow(ctx, withJob(client.StartWorkflowOptions{
		ID:        "catalog/" + now.UTC().Format("20060102T150405.000000000Z"),
		TaskQueue: cfg.Temporal.TaskQueue,
		// A worker that is down must not leave the CLI waiting forever.
		WorkflowExecutionTimeout: 5 * time.Minute,
	}, searchattr.Job{Kind: searchattr.KindCatalog}), workflows.CatalogName)
	if err != nil {
		return ov, fmt.Errorf("start catalog: %w", err)
	}
	var cat []contract.CatalogDataset
	if err := run.Get(ctx, &cat); err != nil {
		return ov, fmt.Errorf("catalog (is a worker running on task queue %s?): %w", cfg.Temporal.TaskQueue, err)
	}
	for _, d := range cat {
		row := OverviewDataset{Dataset: d.Dataset}
		for _, t := range d.Tiers {
			c := OverviewCopy{CatalogTier: t}
			j := jobFor(cfg, d.Dataset, t)
			if j.id != "" {
				js, err := jobState(ctx, cl, cfg, j)
				if err != nil {
					return ov, err
				}
				c.Job = &js
			}
			if j.session && c.Skipped != "" {
				if err := fromSessions(ctx, cl, cfg, j.id, d.Dataset, &c); err != nil {
					return ov, err
				}
			}
			if j.schedule != "" {
				c.Schedule = j.schedule
				if c.NextRun, err = nextRun(ctx, cl, j.schedule); err != nil {
					return ov, err
				}
			}
			if !c.Time.IsZero() {
				age := now.Sub(c.Time).Seconds()
				c.AgeSeconds = &age
			}
			ov.Warnings = append(ov.Warnings, warnings(d.Dataset, c, lim)...)
			row.Copies = append(row.Copies, c)
		}
		ov.Datasets = append(ov.Datasets, row)
	}
	if ov.Warnings == nil {
		ov.Warnings = []string{}
	}
	return ov, nil
}

// job is what feeds a copy: the workflow runs (id, or the runs a schedule
// started) and the schedule that starts them.
type job struct {
	id         string
	bySchedule bool // runs are those the schedule id started
	schedule   string
	session    bool // an ec2 target's Session
}

// jobFor names the job that feeds a copy: the source its snapshot policy
// (the runs its schedule started), a replica of a static target its
// Replicate, of an ec2 target the target's Session, the archive the
// dataset's Archive.
func jobFor(cfg *config.Config, dataset string, t contract.CatalogTier) job {
	switch t.Tier {
	case "source":
		for _, p := range cfg.Policies {
			if p.Dataset == dataset {
				sid := workflows.ScheduleID(dataset)
				return job{id: sid, bySchedule: true, schedule: sid}
			}
		}
	case "replica":
		if tc, ok := cfg.Targets[t.Target]; ok && tc.Kind == "ec2" {
			return job{id: SessionID(t.Target), schedule: SessionID(t.Target), session: true}
		}
		return job{id: workflows.ReplicateWorkflowID(dataset, t.Target, t.TargetDS)}
	case "archive":
		return job{id: workflows.ArchiveWorkflowID(dataset), schedule: workflows.ArchiveScheduleID(dataset)}
	}
	return job{}
}

// nextRun is when schedule id starts its next run; zero when there is no
// such schedule or it is paused.
func nextRun(ctx context.Context, cl client.Client, id string) (time.Time, error) {
	d, err := cl.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("schedule %s: %w", id, err)
	case d.Schedule.State != nil && d.Schedule.State.Paused:
		return time.Time{}, nil
	}
	if len(d.Info.NextActionTimes) == 0 {
		return time.Time{}, nil
	}
	return d.Info.NextActionTimes[0], nil
}

// listRuns returns a job's recent runs, newest first.
func listRuns(ctx context.Context, cl client.Client, cfg *config.Config, j job) ([]*workflowpb.WorkflowExecutionInfo, error) {
	field := "WorkflowId"
	if j.bySchedule {
		field = "TemporalScheduledById"
	}
	resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: cfg.Temporal.Namespace, PageSize: 50,
		Query: fmt.Sprintf("%s = '%s'", field, strings.ReplaceAll(j.id, "'", `\'`)),
	})
	if err != nil {
		return nil, fmt.Errorf("list runs of %s: %w", j.id, err)
	}
	runs := resp.GetExecutions()
	sort.SliceStable(runs, func(i, k int) bool {
		return runs[i].GetStartTime().AsTime().After(runs[k].GetStartTime().AsTime())
	})
	return runs, nil
}

// sessionsLooked is how many recent sessions fromSessions asks.
const sessionsLooked = 5

// fromSessions fills an ec2 replica's newest snapshot from the newest of
// the target's recent sessions that replicated dataset (each session's
// status query names its snapshot and every dataset's state).
func fromSessions(ctx context.Context, cl client.Client, cfg *config.Config, id, dataset string, c *OverviewCopy) error {
	runs, err := listRuns(ctx, cl, cfg, job{id: id})
	if err != nil {
		return err
	}
	for i, r := range runs {
		if i == sessionsLooked {
			break
		}
		if r.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		v, err := cl.QueryWorkflow(ctx, id, r.GetExecution().GetRunId(), workflows.StatusQuery)
		if err != nil {
			continue // a run too old for this worker to replay
		}
		var st workflows.SessionStatus
		if v.Get(&st) != nil {
			continue
		}
		for _, d := range st.Datasets {
			if d.Source != dataset || d.TargetDataset != c.TargetDS || d.State != "done" {
				continue
			}
			c.Snapshot, c.Skipped = st.Snapshot, ""
			if i := strings.LastIndex(st.Snapshot, "_"); i > 0 {
				c.Time, _ = retention.ParseSnapshotName(st.Snapshot[:i], st.Snapshot)
			}
			c.From = fmt.Sprintf("session of %s", r.GetStartTime().AsTime().UTC().Format(time.RFC3339))
			return nil
		}
	}
	return nil
}

// jobState reads the job's recent runs, newest first.
func jobState(ctx context.Context, cl client.Client, cfg *config.Config, j job) (JobState, error) {
	id := j.id
	js := JobState{ID: id}
	runs, err := listRuns(ctx, cl, cfg, j)
	if err != nil {
		return js, err
	}
	seenSuccess := false
	for _, r := range runs {
		switch r.GetStatus() {
		case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
			if !js.Running {
				js.Running, js.RunningSince = true, r.GetStartTime().AsTime()
				js.Progress = progressLine(ctx, cl, r.GetExecution().GetWorkflowId(), r.GetExecution().GetRunId())
			}
		case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			if js.LastSuccess.IsZero() {
				js.LastSuccess = r.GetCloseTime().AsTime()
			}
			seenSuccess = true
		default: // failed, timed out, terminated, cancelled
			if js.LastFailure.IsZero() {
				js.LastFailure = r.GetCloseTime().AsTime()
				if r.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_CANCELED {
					js.Cause = cancelCause(ctx, cl, r.GetExecution().GetWorkflowId(), r.GetExecution().GetRunId())
				} else if err := cl.GetWorkflow(ctx, r.GetExecution().GetWorkflowId(), r.GetExecution().GetRunId()).Get(ctx, nil); err != nil {
					js.Cause = rootMessage(err)
				} else {
					js.Cause = strings.ToLower(strings.TrimPrefix(r.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
				}
			}
			if !seenSuccess {
				js.FailuresInARow++
			}
		}
	}
	return js, nil
}

// rootMessage is the innermost message of a workflow's error: the cause,
// not the "workflow execution error (type: ...)" wrapping.
func rootMessage(err error) string {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			break
		}
		err = u.Unwrap()
	}
	msg := err.Error()
	if i := strings.Index(msg, " (type: "); i > 0 {
		msg = msg[:i]
	}
	return msg
}

func warnings(dataset string, c OverviewCopy, lim overviewLimits) []string {
	var w []string
	name := dataset + " " + c.Tier
	if c.Where != "" {
		name += " " + c.Where
	}
	switch {
	case c.Error != "":
		w = append(w, fmt.Sprintf("%s: cannot be read: %s", name, c.Error))
	case c.Skipped != "":
	case c.Tier != "source" && c.Snapshot == "":
		w = append(w, fmt.Sprintf("%s: holds no snapshot yet", name))
	case c.Tier != "source" && c.AgeSeconds != nil && lim.maxAge > 0 && *c.AgeSeconds > lim.maxAge.Seconds():
		w = append(w, fmt.Sprintf("%s: newest snapshot is %s old (more than %s)", name, ageText(*c.AgeSeconds), lim.maxAge))
	}
	if j := c.Job; j != nil && j.FailuresInARow >= lim.maxFailures {
		w = append(w, fmt.Sprintf("%s: %s failed %d time(s) in a row: %s", name, j.ID, j.FailuresInARow, j.Cause))
	}
	return w
}

// ageText prints seconds as the largest two units: 45s, 3m12s, 5h07m, 2d04h.
func ageText(sec float64) string {
	d := time.Duration(sec) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// printOverview writes the table: one block per dataset, a line per copy.
func printOverview(out io.Writer, ov Overview) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tCOPY\tNEWEST\tAGE\tNEXT RUN\tLAST OK\tLAST FAILURE\tNOW")
	for _, d := range ov.Datasets {
		for i, c := range d.Copies {
			ds := ""
			if i == 0 {
				ds = d.Dataset
			}
			where := c.Tier
			if c.Where != "" {
				where += " " + c.Where
			}
			newest, ago := "-", "-"
			switch {
			case c.Error != "":
				newest = "(error)"
			case c.Skipped != "":
				newest = "(not checked)"
			case c.Snapshot != "" && c.From != "":
				newest = c.Snapshot + " (last session)"
			case c.Snapshot != "":
				newest = c.Snapshot
			}
			if c.AgeSeconds != nil {
				ago = ageText(*c.AgeSeconds)
			}
			next, ok, failed, now := "", "", "", ""
			if c.Schedule != "" {
				next = stamp(c.NextRun)
			}
			if j := c.Job; j != nil {
				if next == "" {
					next = "-"
				}
				ok, failed, now = stamp(j.LastSuccess), stamp(j.LastFailure), "-"
				if j.FailuresInARow > 1 {
					failed += fmt.Sprintf(" (%d in a row)", j.FailuresInARow)
				}
				if j.Running {
					now = "running since " + j.RunningSince.Local().Format("15:04")
					if j.Progress != "" {
						now += ": " + j.Progress
					}
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ds, where, newest, ago, next, ok, failed, now)
		}
	}
	tw.Flush()
	if len(ov.Warnings) > 0 {
		fmt.Fprintln(out, "\nWARNINGS")
		for _, w := range ov.Warnings {
			fmt.Fprintf(out, "  %s\n", w)
		}
	}
}

func printOverviewJSON(out io.Writer, ov Overview) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(ov)
}
