// Package workerapp builds and runs the Temporal worker from a config; the
// worker binary, the `zcloud worker` command and the tests share it.
package workerapp

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/internal/tclient"
	"zcloud/logging"
	"zcloud/metrics"
	"zcloud/searchattr"
	"zcloud/workflows"
)

// Run loads the config and runs the worker until SIGINT/SIGTERM.
func Run(cfgPath string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	defer log.Sync()
	var m *metrics.Metrics
	if cfg.Metrics.Listen != "" {
		m = metrics.New()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A service started with (or before) Temporal waits for it.
	cl, err := tclient.DialWait(ctx, cfg.Temporal, log, tclient.DefaultBackoff, tclient.WithMetrics(m.SDKHandler()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ensureSearchAttributes(ctx, cl, cfg.Temporal.Namespace, log)
	acts := activities.New(cfg, log)
	if m != nil {
		acts.Metrics = m
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := seedJobMetrics(sctx, cl, cfg.Temporal.Namespace, cfg.Temporal.TaskQueue, m, time.Now())
		cancel()
		if err != nil {
			log.Warn("job metrics start empty: finished runs could not be read", zap.Error(err))
		} else {
			log.Info("job metrics seeded from finished runs", zap.Int("runs", n))
		}
		go func() {
			if err := m.Serve(ctx, cfg.Metrics.Listen); err != nil {
				log.Error("metrics server", zap.Error(err))
			}
		}()
		log.Info("serving Prometheus metrics", zap.String("listen", cfg.Metrics.Listen))
		go activities.LoadDeepDrillMetrics(ctx, acts)
	}
	w := New(cl, cfg, acts)
	log.Info("worker starting", zap.String("temporal", cfg.Temporal.Address), zap.String("task_queue", cfg.Temporal.TaskQueue))
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	log.Info("worker stopping (waiting for running activities to finish or heartbeat out)")
	w.Stop()
	return nil
}

// New returns a worker on cfg's task queue with everything registered.
func New(cl client.Client, cfg *config.Config, acts *activities.Activities) worker.Worker {
	w := worker.New(cl, cfg.Temporal.TaskQueue, worker.Options{
		Identity: Identity(),
		// Activities stop when the worker stops; their heartbeats let a
		// retry on another worker resume.
		WorkerStopTimeout: 10e9,
		// Current details for the Web UI, run outcomes for the metrics.
		Interceptors: []interceptor.WorkerInterceptor{workflows.NewInterceptor(runRecorder(acts.Metrics))},
	})
	workflows.Register(w)
	w.RegisterActivity(acts)
	if acts.Gate != nil && acts.Log != nil {
		acts.Log.Warn("TEST-ONLY gate enabled: activities may hold at named points until a test releases them", zap.String("dir", acts.Gate.Dir()))
	}
	return w
}

// ensureSearchAttributes registers zcloud's search attributes where the
// namespace lacks them; where the worker may not (a cluster's operator API),
// it says what to run, and goes on: starts fail until they exist.
func ensureSearchAttributes(ctx context.Context, cl client.Client, namespace string, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	added, err := tclient.EnsureSearchAttributes(ctx, cl, namespace)
	switch {
	case err != nil:
		log.Warn("zcloud's search attributes could not be checked or registered", zap.Error(err))
	case len(added) > 0:
		log.Info("registered zcloud's search attributes", zap.Strings("added", added))
	}
}

// runRecorder: no metrics, no recorder (a nil *Metrics in the interface
// would not be a nil interface).
func runRecorder(m *metrics.Metrics) workflows.RunRecorder {
	if m == nil {
		return nil
	}
	return metricsRecorder{m}
}

// metricsRecorder hands run outcomes to the metrics.
type metricsRecorder struct{ m *metrics.Metrics }

func (r metricsRecorder) RunDone(o workflows.RunOutcome) { r.m.RunDone(toRun(o)) }

// toRun is a run's outcome under the metrics' labels.
func toRun(o workflows.RunOutcome) metrics.Run {
	return metrics.Run{Kind: o.Job.Kind, Datasets: o.Job.Datasets, Tier: tier(o.Job), Outcome: o.Outcome,
		Started: o.Started, Ended: o.Ended, Bytes: o.Bytes}
}

// tier is where a job's copy lives: its target ("archive" for the cold
// archive), its pool, or the source itself (snapshots, prunes, staging).
func tier(j searchattr.Job) string {
	switch {
	case j.Target != "":
		return j.Target
	case j.Pool != "":
		return "pool/" + j.Pool
	}
	return "source"
}
