package runtime

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// ComponentGroup is the fx value group components join (see AsComponent).
const ComponentGroup = "components"

// Params is what Module needs from the fx graph.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Log       logr.Logger
	// LeaderConfig is the election's name and timings.
	LeaderConfig leader.Config
	// Elector is the election backend; when absent, Module elects through
	// the SQL lease on DB (or NoElection with Options.SingleReplica).
	Elector leader.Elector `optional:"true"`
	// DB holds the lease and epoch tables; required without Elector unless
	// Options.SingleReplica.
	DB *gorm.DB `optional:"true"`
	// Options tunes the runtime; the zero value is the default.
	Options Options `optional:"true"`
	// Resetter is the store's reset, if a store is in the graph.
	Resetter Resetter `optional:"true"`
	// Components is the value group ComponentGroup, in no particular order:
	// the runtime sorts it (Orderer, then Name).
	Components []Component `group:"components"`
}

// Module provides *Runtime, built from Params, and ties it to the fx
// lifecycle: OnStart runs Runtime.Start (so a lease table that cannot be
// created fails the application's start), OnStop runs Runtime.Stop.
//
// A component joins with fx.Provide(runtime.AsComponent(NewThing)).
var Module = fx.Module("runtime",
	fx.Provide(NewFromParams),
	fx.Invoke(func(*Runtime) {}),
)

// NewFromParams builds the runtime of Module on Elector, else a
// leader.LeaseElector on DB, or NoElection when Options.SingleReplica is set.
func NewFromParams(p Params) (*Runtime, error) {
	log := p.Log.WithName("runtime")
	opts := p.Options
	if p.Resetter != nil && opts.Resetter == nil {
		opts.Resetter = p.Resetter
	}
	el := p.Elector
	switch {
	case el != nil:
	case opts.SingleReplica:
		if err := leader.ValidateName(p.LeaderConfig.Name); err != nil {
			return nil, err
		}
		if s, ok := opts.Resetter.(interface{ Shared() bool }); ok && s.Shared() {
			// Every write to a shared store is fenced by a term that an
			// election mints; NoElection mints none, so each would fail.
			return nil, fmt.Errorf("%w: singleReplica cannot be used with a shared store: its writes are fenced by terms only an election mints (drop singleReplica, or use the memory store)", ErrInvalidOptions)
		}
		el = NewNoElection(p.LeaderConfig.Name, opts.Identity)
		log.Info("single-replica mode: leading without election; do not run a second replica", "election", p.LeaderConfig.Name)
	default:
		if p.DB == nil {
			return nil, fmt.Errorf("%w: no *gorm.DB for the lease table (set Options.SingleReplica to run without election)", ErrElectionSetup)
		}
		leOpts := []leader.Option{leader.WithLogger(log.WithName("leader"))}
		if opts.Identity != "" {
			leOpts = append(leOpts, leader.WithIdentity(opts.Identity))
		}
		epochs, err := leader.NewEpochs(p.DB)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrElectionSetup, err)
		}
		le, err := leader.NewLeaseElector(p.DB, epochs, p.LeaderConfig, leOpts...)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrElectionSetup, err)
		}
		el = le
	}
	rt, err := New(log, el, p.Components, opts)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error { return rt.Start(ctx) },
		OnStop:  func(ctx context.Context) error { return rt.Stop(ctx) },
	})
	return rt, nil
}

// AsComponent annotates a constructor so that its result joins the
// components group as a Component.
func AsComponent(constructor any) any {
	return fx.Annotate(constructor, fx.As(new(Component)), fx.ResultTags(`group:"`+ComponentGroup+`"`))
}

// FxLogger sends fx's own event log through log: its routine events
// (provided, invoked, hook executed) at V(4), so that they show only when
// asked for, and its failures as errors.
func FxLogger(log logr.Logger) fx.Option {
	return fx.WithLogger(func() fxevent.Logger {
		l := &fxevent.SlogLogger{Logger: slog.New(logr.ToSlogHandler(log.WithName("fx")))}
		l.UseLogLevel(slog.LevelDebug)
		l.UseErrorLevel(slog.LevelError)
		return l
	})
}
