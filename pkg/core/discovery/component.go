package discovery

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Name is the component's name.
const Name = "discovery"

// Discovery is the leader-only component that mirrors the registry into the
// store. It satisfies runtime.Component and runtime.LeaderElectionRunnable.
type Discovery struct {
	cfg   Config
	store store.ResourceStore
	reg   source.Registry
	log   logr.Logger
}

// New returns the component; reg maps URL schemes to sources (see Sources).
func New(cfg Config, st store.ResourceStore, reg source.Registry, log logr.Logger) *Discovery {
	return &Discovery{cfg: cfg, store: st, reg: reg, log: log.WithName(Name)}
}

func (d *Discovery) Name() string { return Name }

// NeedLeaderElection is true: only the leader writes the registry's view.
func (d *Discovery) NeedLeaderElection() bool { return true }

// Init checks the config; it starts nothing.
func (d *Discovery) Init(context.Context) error {
	if d.store == nil {
		return fmt.Errorf("discovery: no store")
	}
	if err := d.cfg.Validate(d.reg); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	return nil
}

// Start runs one term of mirroring; see source.Loop.Run.
func (d *Discovery) Start(ctx context.Context) error {
	u, open, err := d.reg.Resolve(d.cfg.URL)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	loop := source.Loop{
		Name:   Name,
		Open:   func(ctx context.Context) (source.Source, error) { return open(ctx, u, d.log) },
		View:   NewView,
		Store:  d.store,
		Resync: d.cfg.Resync,
		Log:    d.log,
	}
	return loop.Run(ctx)
}
