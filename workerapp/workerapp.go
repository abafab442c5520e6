// Package workerapp builds and runs the Temporal worker from a config; the
// worker binary, the `zcloud worker` command and the tests share it.
package workerapp

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"zcloud/activities"
	"zcloud/config"
	"zcloud/internal/tclient"
	"zcloud/logging"
	"zcloud/metrics"
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A service started with (or before) Temporal waits for it.
	cl, err := tclient.DialWait(ctx, cfg.Temporal, log, tclient.DefaultBackoff)
	if err != nil {
		return err
	}
	defer cl.Close()
	acts := activities.New(cfg, log)
	if cfg.Metrics.Listen != "" {
		acts.Metrics = metrics.New()
		go func() {
			if err := acts.Metrics.Serve(ctx, cfg.Metrics.Listen); err != nil {
				log.Error("metrics server", zap.Error(err))
			}
		}()
		log.Info("serving Prometheus metrics", zap.String("listen", cfg.Metrics.Listen))
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
	})
	workflows.Register(w)
	w.RegisterActivity(acts)
	if acts.Gate != nil && acts.Log != nil {
		acts.Log.Warn("TEST-ONLY gate enabled: activities may hold at named points until a test releases them", zap.String("dir", acts.Gate.Dir()))
	}
	return w
}
