package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// InProcessConfig configures StartInProcess.
type InProcessConfig struct {
	Database Database
	// Source is the Engine's file directory; required.
	Source *Source
	// Leader holds the election timings; the zero value means FastTimings().
	Leader leader.Config
	// Proxied puts a faultproxy.Proxy in front of each replica's
	// connections (MySQL and PostgreSQL only; ignored on SQLite).
	Proxied bool
	// DrainTimeout bounds the leader components' return; 0 means
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// ProbeInterval paces the Probe's writes; 0 means 20ms.
	ProbeInterval time.Duration
	// Log receives the replicas' logs; the zero value discards.
	Log logr.Logger
	// PoolHook, when set, sees each replica's new pool before anything runs
	// on it (the benchmarks register statement-counting callbacks there:
	// registering them on a live pool would race with its statements).
	PoolHook PoolHook
}

// PoolHook sees replica i's pool after it is opened and before anything
// runs on it.
type PoolHook func(i int, db *gorm.DB) error

func (c InProcessConfig) withDefaults() (InProcessConfig, error) {
	if c.Source == nil {
		return c, errors.New("harness: InProcessConfig.Source is required")
	}
	if c.Leader == (leader.Config{}) {
		c.Leader = FastTimings()
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 20 * time.Millisecond
	}
	if c.Log.GetSink() == nil {
		c.Log = logr.Discard()
	}
	return c, c.Leader.Validate()
}

// InProcess is a cluster of replicas in this process. Its methods are safe
// for concurrent use.
type InProcess struct {
	cfg InProcessConfig
	// Timeline records every leader component's Start of every replica.
	Timeline *Timeline
	// WriteLog orders every write to the resources table.
	WriteLog *WriteLog
	// Store reads the shared store through the observer's own pool.
	Store store.ResourceStore

	observer *gorm.DB

	mu        sync.Mutex
	replicas  []*Replica
	failStops []error
}

// Replica is one in-process replica. A stopped replica can be started
// again: it comes back as a new holder with a new pool.
type Replica struct {
	Index int
	// Proxy is in front of the replica's connections (nil when not
	// Proxied); it outlives restarts of the replica.
	Proxy *faultproxy.Proxy

	mu         sync.Mutex
	generation int
	identity   string
	app        *fx.App
	rt         *runtime.Runtime
	db         *gorm.DB
	probe      *Probe
	running    bool
}

// StartInProcess prepares the database (store table and write log) and
// starts n replicas; it does not wait for a leader. Close stops them all.
func StartInProcess(ctx context.Context, n int, cfg InProcessConfig) (*InProcess, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	observer, err := database.Open(ctx, cfg.Database.Config)
	if err != nil {
		return nil, fmt.Errorf("harness: open observer pool: %w", err)
	}
	st, wl, err := prepare(ctx, observer)
	if err != nil {
		_ = database.Close(observer)
		return nil, err
	}
	c := &InProcess{cfg: cfg, Timeline: &Timeline{}, WriteLog: wl, Store: st, observer: observer}
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
		if err := c.Start(ctx, i); err != nil {
			return nil, errors.Join(err, c.Close(ctx))
		}
	}
	return c, nil
}

// N is the number of replicas.
func (c *InProcess) N() int { return len(c.replicas) }

// Replica returns replica i.
func (c *InProcess) Replica(i int) *Replica { return c.replicas[i] }

// Observer is the harness's own pool on the database (not proxied).
func (c *InProcess) Observer() *gorm.DB { return c.observer }

// FailStops returns the fail-stop errors the runtimes reported (a leader
// component that did not return within the drain timeout).
func (c *InProcess) FailStops() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.failStops...)
}

// Start starts replica i (again), as a new holder with a new pool.
func (c *InProcess) Start(ctx context.Context, i int) error {
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
	if c.cfg.PoolHook != nil {
		if err := c.cfg.PoolHook(i, db); err != nil {
			_ = database.Close(db)
			return fmt.Errorf("harness: replica %d: pool hook: %w", i, err)
		}
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

// Stop stops replica i gracefully: its leader components drain, it releases
// the lease, and its pool closes.
func (c *InProcess) Stop(ctx context.Context, i int) error {
	r := c.replicas[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return nil
	}
	r.running = false
	err := r.app.Stop(ctx)
	return errors.Join(err, database.Close(r.db))
}

// Running reports whether replica i is started.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Identity is the holder name of the replica's current (or last) run.
func (r *Replica) Identity() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.identity
}

// Status is the runtime's status; the zero Status when never started.
func (r *Replica) Status() runtime.Status {
	r.mu.Lock()
	rt := r.rt
	r.mu.Unlock()
	if rt == nil {
		return runtime.Status{}
	}
	return rt.Status()
}

// ProbeStats returns the counters of the replica's current probe.
func (r *Replica) ProbeStats() ProbeStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.probe == nil {
		return ProbeStats{}
	}
	return r.probe.Stats()
}

// Leaders returns the running replicas whose runtime is Leading, and their
// terms.
func (c *InProcess) Leaders() (idx []int, terms []int64) {
	for i, r := range c.replicas {
		if !r.Running() {
			continue
		}
		if st := r.Status(); st.Role == runtime.RoleLeading {
			idx, terms = append(idx, i), append(terms, st.Term.Number)
		}
	}
	return idx, terms
}

// Leader returns the one Leading replica and its term; ok is false when
// none or several lead.
func (c *InProcess) Leader() (i int, term int64, ok bool) {
	idx, terms := c.Leaders()
	if len(idx) != 1 {
		return -1, 0, false
	}
	return idx[0], terms[0], true
}

// WaitForLeader polls every 10ms until exactly one replica leads with a
// term other than notTerm (0: any), or ctx ends.
func (c *InProcess) WaitForLeader(ctx context.Context, notTerm int64) (i int, term int64, err error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if i, term, ok := c.Leader(); ok && term != notTerm {
			return i, term, nil
		}
		select {
		case <-ctx.Done():
			return -1, 0, fmt.Errorf("harness: no leader: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Close stops every replica, closes the proxies and the observer's pool.
func (c *InProcess) Close(ctx context.Context) error {
	var errs []error
	for i, r := range c.replicas {
		if r.Proxy != nil {
			r.Proxy.Resume()
		}
		errs = append(errs, c.Stop(ctx, i))
	}
	for _, r := range c.replicas {
		if r.Proxy != nil {
			r.Proxy.Close()
		}
	}
	errs = append(errs, database.Close(c.observer))
	return errors.Join(errs...)
}
