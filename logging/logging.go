// Package logging builds zcloud's zap logger and adapts it to the Temporal
// SDK's logger interface, so SDK and zcloud lines share one format.
package logging

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a logger at level ("debug", "info", "warn", "error") in
// format "console" or "json", writing to stderr.
func New(level, format string) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console", "":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("log format %q: want console or json", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.OutputPaths = []string{"stderr"}
	return cfg.Build()
}

// Temporal adapts a zap logger to go.temporal.io/sdk/log.Logger.
type Temporal struct{ z *zap.SugaredLogger }

// NewTemporal wraps z for client.Options.Logger.
func NewTemporal(z *zap.Logger) *Temporal {
	return &Temporal{z.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

func (l *Temporal) Debug(msg string, kv ...any) { l.z.Debugw(msg, kv...) }
func (l *Temporal) Info(msg string, kv ...any)  { l.z.Infow(msg, kv...) }
func (l *Temporal) Warn(msg string, kv ...any)  { l.z.Warnw(msg, kv...) }
func (l *Temporal) Error(msg string, kv ...any) { l.z.Errorw(msg, kv...) }

// With returns a logger with fields added (log.WithLogger).
func (l *Temporal) With(kv ...any) log.Logger { return &Temporal{l.z.With(kv...)} }

var _ log.WithLogger = (*Temporal)(nil)
