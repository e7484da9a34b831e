package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// This file extends InProcess for the benchmarks of test/bench: a hook on
// each replica's pool before its runtime starts (to register GORM
// callbacks that count statements: registering them on a live pool would
// race with its statements), and a simulated crash.

// PoolHook sees replica i's pool after it is opened and before anything
// runs on it.
type PoolHook func(i int, db *gorm.DB) error

// StartInProcessHooked is StartInProcess with hook called on every
// replica's pool before its runtime starts. Restart a replica with
// StartHooked to hook its new pool too.
func StartInProcessHooked(ctx context.Context, n int, cfg InProcessConfig, hook PoolHook) (*InProcess, error) {
	c, err := StartInProcess(ctx, 0, cfg)
	if err != nil {
		return nil, err
	}
	cfg = c.cfg
	for i := range n {
		r := &Replica{Index: i}
		if cfg.Proxied && cfg.Database.Addr != "" {
			p, err := faultproxy.Start(cfg.Database.Addr)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("harness: start proxy of replica %d: %w", i, err), c.Close(ctx))
			}
			r.Proxy = p
		}
		c.replicas = append(c.replicas, r)
	}
	for i := range n {
		if err := c.StartHooked(ctx, i, hook); err != nil {
			return nil, errors.Join(err, c.Close(ctx))
		}
	}
	return c, nil
}

// StartHooked is Start with hook called on the replica's new pool before
// its runtime starts; a nil hook makes it Start.
func (c *InProcess) StartHooked(ctx context.Context, i int, hook PoolHook) error {
	if hook == nil {
		return c.Start(ctx, i)
	}
	r := c.replicas[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return nil
	}
	r.generation++
	r.identity = fmt.Sprintf("replica-%d.%d", i, r.generation)
	dbCfg := c.cfg.Database.Config
	if r.Proxy != nil {
		var err error
		if dbCfg, err = c.cfg.Database.Via(r.Proxy.Addr()); err != nil {
			return err
		}
	}
	db, err := database.Open(ctx, dbCfg)
	if err != nil {
		return fmt.Errorf("harness: replica %d: %w", i, err)
	}
	if err := hook(i, db); err != nil {
		_ = database.Close(db)
		return fmt.Errorf("harness: replica %d: pool hook: %w", i, err)
	}
	st, err := store.NewGORM(db)
	if err != nil {
		_ = database.Close(db)
		return fmt.Errorf("harness: replica %d: %w", i, err)
	}
	log := c.cfg.Log.WithValues("replica", r.identity)
	probe := &Probe{Replica: r.identity, Store: st, Interval: c.cfg.ProbeInterval}
	eng := engine.New(engine.Config{URL: c.cfg.Source.URL()}, st, engine.Sources(), log)
	opts := runtime.Options{
		Identity:     r.identity,
		DrainTimeout: c.cfg.DrainTimeout,
		Backoff:      runtime.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2},
		Resetter:     st,
		FailStop: func(err error) {
			c.mu.Lock()
			c.failStops = append(c.failStops, fmt.Errorf("%s: %w", r.identity, err))
			c.mu.Unlock()
		},
	}
	var rt *runtime.Runtime
	app := fx.New(
		fx.NopLogger,
		fx.StopTimeout(c.cfg.DrainTimeout+c.cfg.Leader.OpTimeout+10*time.Second),
		fx.Supply(c.cfg.Leader, log, db, opts),
		runtime.Module,
		fx.Provide(
			runtime.AsComponent(func() *recorded { return &recorded{Component: eng, replica: r.identity, timeline: c.Timeline} }),
			runtime.AsComponent(func() *recorded { return &recorded{Component: probe, replica: r.identity, timeline: c.Timeline} }),
		),
		fx.Populate(&rt),
	)
	if err := app.Err(); err != nil {
		_ = database.Close(db)
		return fmt.Errorf("harness: replica %d: build: %w", i, err)
	}
	if err := app.Start(ctx); err != nil {
		_ = database.Close(db)
		return fmt.Errorf("harness: replica %d: start: %w", i, err)
	}
	r.app, r.rt, r.db, r.probe, r.running = app, rt, db, probe, true
	return nil
}

// SimulateCrash stops replica i the way a crash would, as far as the
// database can tell: it closes the replica's pool first, so that no
// statement of it runs again (in particular no release of the lease), then
// stops its runtime (which cannot release what it holds). Its lease stays
// until it expires by the database clock, as after a kill -9. The replica
// can be started again as a new holder.
func (c *InProcess) SimulateCrash(ctx context.Context, i int) error {
	r := c.replicas[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return nil
	}
	r.running = false
	closeErr := database.Close(r.db)
	stopErr := r.app.Stop(ctx)
	return errors.Join(closeErr, stopErr)
}

// DB is the pool of the replica's current (or last) run; nil before its
// first start.
func (r *Replica) DB() *gorm.DB {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.db
}
