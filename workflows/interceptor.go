package workflows

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"zcloud/searchattr"
)

// RunOutcome is how one run of a zcloud workflow ended.
type RunOutcome struct {
	Job     searchattr.Job // from the run's search attributes; Kind from its type when it has none
	Outcome string         // OutcomeOK, OutcomeError or OutcomeCancelled
	Started time.Time      // when the run started: its snapshot is about this old
	Ended   time.Time
	Bytes   int64 // bytes the run moved (sent, archived, restored, re-read), where it says
}

// Outcomes of a run.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomeCancelled = "cancelled"
)

// RunRecorder receives each run's outcome from the worker that completed
// it; a replayed history records nothing. metrics.Metrics implements it.
type RunRecorder interface {
	RunDone(RunOutcome)
}

// bytesMover is a workflow result that says how many bytes its run moved.
type bytesMover interface{ MovedBytes() int64 }

// MovedBytes implements bytesMover.
func (r ReplicateResult) MovedBytes() int64 { return r.Send.Bytes }

// MovedBytes implements bytesMover: the datasets' sends.
func (r SessionResult) MovedBytes() int64 {
	var n int64
	for _, d := range r.Status.Datasets {
		n += d.Bytes
	}
	return n
}

// MovedBytes implements bytesMover: the stream archived (plain size).
func (s ArchiveStatus) MovedBytes() int64 {
	if s.Stream == nil || s.Stream.AlreadyArchived {
		return 0
	}
	return s.Stream.Stream.PlainSize
}

// MovedBytes implements bytesMover: the streams received.
func (s RestoreStatus) MovedBytes() int64 {
	var n int64
	for _, r := range s.Received {
		n += r.Bytes
	}
	return n
}

// MovedBytes implements bytesMover: the bytes re-read and checked.
func (s VerifyStatus) MovedBytes() int64 { return s.Bytes }

// NewInterceptor returns the worker interceptor every zcloud worker runs
// its workflows with. Histories recorded before it replay as before. For each run it
//   - keeps the run's current details (workflow.SetCurrentDetails: what
//     the Web UI shows on the run's page) up to date with its status
//     query's phase and error, the step it waits on, and at the end its
//     outcome and bytes;
//   - hands the run's outcome to rec (metrics), once, on the worker that
//     completed it;
//   - reports a failed run through the notifiers (notifyFailedRun): the
//     one step it adds, behind a GetVersion.
func NewInterceptor(rec RunRecorder) interceptor.WorkerInterceptor {
	return &workerInterceptor{rec: rec}
}

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	rec RunRecorder
}

func (w *workerInterceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &runInbound{rec: w.rec}
	i.Next = next
	return i
}

// runInbound follows one run.
type runInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	rec    RunRecorder
	status reflect.Value // the run's status query handler, once set
	step   string        // what the run waits on now
	end    string        // how it ended, once it has
}

func (i *runInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &runOutbound{in: i}
	o.Next = outbound
	return i.Next.Init(o)
}

func (i *runInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := i.Next.ExecuteWorkflow(ctx, in)
	if workflow.IsContinueAsNewError(err) {
		return res, err
	}
	info := workflow.GetInfo(ctx)
	o := RunOutcome{Job: searchattr.FromAttributes(workflow.GetTypedSearchAttributes(ctx)), Outcome: OutcomeOK,
		Started: info.WorkflowStartTime, Ended: workflow.Now(ctx)}
	if o.Job.Kind == "" {
		o.Job.Kind = JobKind(info.WorkflowType.Name)
	}
	if m, ok := res.(bytesMover); ok && err == nil {
		o.Bytes = m.MovedBytes()
	}
	cause := ""
	switch {
	case temporal.IsCanceledError(err):
		o.Outcome = OutcomeCancelled
		i.end = "cancelled"
	case err != nil:
		o.Outcome = OutcomeError
		cause, _ = rootCause(err)
		i.end = "failed: " + cause
	default:
		i.end = "done"
		if o.Bytes > 0 {
			i.end += fmt.Sprintf(", %d bytes", o.Bytes)
		}
	}
	if i.rec != nil && !workflow.IsReplaying(ctx) && o.Job.Kind != "" {
		i.rec.RunDone(o)
	}
	if o.Outcome == OutcomeError {
		notifyFailedRun(ctx, o.Job, cause)
	}
	i.step = ""
	i.refresh(ctx)
	return res, err
}

// refresh rewrites the run's current details from its status query (phase
// and error), its step and its end: markdown, one item a line.
func (i *runInbound) refresh(ctx workflow.Context) {
	var lines []string
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, "**"+k+":** "+v)
		}
	}
	if i.status.IsValid() {
		if out := i.status.Call(nil); len(out) == 2 && out[1].IsNil() {
			var st struct {
				Phase string `json:"phase"`
				Error string `json:"error"`
			}
			if b, err := json.Marshal(out[0].Interface()); err == nil && json.Unmarshal(b, &st) == nil {
				add("phase", st.Phase)
				add("error", st.Error)
			}
		}
	}
	add("waiting on", i.step)
	add("ended", i.end)
	workflow.SetCurrentDetails(ctx, strings.Join(lines, "  \n"))
}

// runOutbound sees the run's status handler and every step it waits on.
type runOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	in *runInbound
}

func (o *runOutbound) SetQueryHandler(ctx workflow.Context, queryType string, handler any) error {
	if queryType == StatusQuery {
		if v := reflect.ValueOf(handler); v.Kind() == reflect.Func && v.Type().NumIn() == 0 && v.Type().NumOut() == 2 {
			o.in.status = v
		}
	}
	return o.Next.SetQueryHandler(ctx, queryType, handler)
}

func (o *runOutbound) waitOn(ctx workflow.Context, step string) {
	o.in.step = step
	o.in.refresh(ctx)
}

func (o *runOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.waitOn(ctx, "activity "+activityType)
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func (o *runOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.waitOn(ctx, "activity "+activityType)
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

func (o *runOutbound) ExecuteChildWorkflow(ctx workflow.Context, childWorkflowType string, args ...any) workflow.ChildWorkflowFuture {
	o.waitOn(ctx, "child workflow "+childWorkflowType)
	return o.Next.ExecuteChildWorkflow(ctx, childWorkflowType, args...)
}

func (o *runOutbound) NewTimer(ctx workflow.Context, d time.Duration) workflow.Future {
	o.waitOn(ctx, "timer "+d.String())
	return o.Next.NewTimer(ctx, d)
}

func (o *runOutbound) Await(ctx workflow.Context, condition func() bool) error {
	o.waitOn(ctx, "a condition (an update or a signal)")
	return o.Next.Await(ctx, condition)
}

func (o *runOutbound) AwaitWithTimeout(ctx workflow.Context, timeout time.Duration, condition func() bool) (bool, error) {
	o.waitOn(ctx, "a condition (an update or a signal), at most "+timeout.String())
	return o.Next.AwaitWithTimeout(ctx, timeout, condition)
}

func (o *runOutbound) Sleep(ctx workflow.Context, d time.Duration) error {
	o.waitOn(ctx, "timer "+d.String())
	return o.Next.Sleep(ctx, d)
}
