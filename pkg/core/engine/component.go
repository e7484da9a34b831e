package engine

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Name is the component's name.
const Name = "engine"

// Engine is the leader-only component that mirrors the runtime into the
// store. It satisfies runtime.Component and runtime.LeaderElectionRunnable.
type Engine struct {
	cfg   Config
	store store.ResourceStore
	reg   source.Registry
	log   logr.Logger
}

// New returns the component; reg maps URL schemes to sources (see Sources).
func New(cfg Config, st store.ResourceStore, reg source.Registry, log logr.Logger) *Engine {
	return &Engine{cfg: cfg, store: st, reg: reg, log: log.WithName(Name)}
}

func (e *Engine) Name() string { return Name }

// NeedLeaderElection is true: only the leader writes the runtime's view.
func (e *Engine) NeedLeaderElection() bool { return true }

// Init checks the config; it starts nothing.
func (e *Engine) Init(context.Context) error {
	if e.store == nil {
		return fmt.Errorf("engine: no store")
	}
	if err := e.cfg.Validate(e.reg); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}

// Start runs one term of mirroring; see source.Loop.Run.
func (e *Engine) Start(ctx context.Context) error {
	u, open, err := e.reg.Resolve(e.cfg.URL)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	loop := source.Loop{
		Name:   Name,
		Open:   func(ctx context.Context) (source.Source, error) { return open(ctx, u, e.log) },
		View:   func() source.View { return source.Identity(KindRuntimeInstance) },
		Store:  e.store,
		Resync: e.cfg.Resync,
		Log:    e.log,
	}
	return loop.Run(ctx)
}
