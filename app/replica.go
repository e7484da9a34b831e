package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/membership"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// ErrStoreNotShared: the memory store was asked to serve several replicas.
var ErrStoreNotShared = fmt.Errorf("%w: the store is not shared between processes", ErrInvalidConfig)

// Replica is one replica of Admin: an fx application built by NewReplica.
//
// Start order: database (opened while building), store tables, role watch,
// HTTP server, runtime (lease table, Init, non-leader components, then the
// campaign). Stop runs the reverse: the runtime drains the leader
// components and releases the lease, then the HTTP server shuts down, then
// the database closes.
type Replica struct {
	app     *fx.App
	rt      *runtime.Runtime
	server  *httpServer
	started *atomic.Bool
	stopT   time.Duration
}

// NewReplica builds the replica of cfg; it opens the database (and fails
// when it does not answer) but starts nothing.
func NewReplica(cfg Config, log logr.Logger) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkSQLiteFile(cfg.Database, false); err != nil {
		return nil, err
	}
	r := &Replica{started: new(atomic.Bool), stopT: stopTimeout(cfg)}
	r.app = fx.New(
		fxLogger(log),
		fx.StartTimeout(startTimeout),
		fx.StopTimeout(r.stopT),
		fx.Supply(cfg, log, r.started),
		fx.Provide(
			openDatabase,
			NewMetrics,
			newStore,
			newEpochs,
			newElector,
			runtime.AsComponent(newDiscovery),
			runtime.AsComponent(newEngine),
			newRuntime,
			newConsole,
			newAPI,
			newReplicaServer,
			newMembership,
		),
		heartbeatComponent(cfg),
		fx.Invoke(recordMembership), // before wireLifecycle: stopped after the runtime
		fx.Invoke(wireLifecycle),
		fx.Populate(&r.rt, &r.server),
	)
	if err := r.app.Err(); err != nil {
		return nil, assemblyError(err)
	}
	return r, nil
}

// Start starts the replica; it does not wait to be elected.
func (r *Replica) Start(ctx context.Context) error { return r.app.Start(ctx) }

// Stop stops the replica (see the type doc for the order).
func (r *Replica) Stop(ctx context.Context) error { return r.app.Stop(ctx) }

// StopTimeout is how long Stop may take at most.
func (r *Replica) StopTimeout() time.Duration { return r.stopT }

// Runtime is the replica's runtime.
func (r *Replica) Runtime() *runtime.Runtime { return r.rt }

// HTTPAddress is where the API listens, once started.
func (r *Replica) HTTPAddress() string { return r.server.Address() }

// stopTimeout covers the drain, the lease release and the HTTP shutdown.
func stopTimeout(cfg Config) time.Duration {
	return cfg.Runtime.DrainTimeout.D() + cfg.Election.OpTimeout.D() + cfg.HTTP.ShutdownTimeout.D() + 5*time.Second
}

func openDatabase(lc fx.Lifecycle, cfg Config) (*gorm.DB, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dbCfg := cfg.Database
	if dbCfg.IdleTxTimeout == 0 {
		// A replica frozen inside a fenced write must not hold the lease row
		// past the point where it would have lost its term anyway.
		dbCfg.IdleTxTimeout = cfg.Election.RenewDeadline.D()
	}
	if dbCfg.IOTimeout == 0 {
		// A black-holed connection (a COMMIT the driver cannot cancel) must
		// fail within the time a leader has to notice it lost its lease.
		dbCfg.IOTimeout = cfg.Election.RenewDeadline.D()
	}
	db, err := database.Open(ctx, dbCfg)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StopHook(func() error { return database.Close(db) }))
	return db, nil
}

// newStore returns the configured store, counting fenced writes. A store
// that is not Shared refuses to serve more than one replica.
func newStore(lc fx.Lifecycle, cfg Config, db *gorm.DB, m *Metrics) (store.ResourceStore, error) {
	var st store.ResourceStore
	switch cfg.Store.Backend {
	case StoreMemory:
		st = store.NewMemory()
	default:
		g, err := store.NewGORM(db)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.StartHook(func(ctx context.Context) error { return g.Migrate(ctx) }))
		st = g
	}
	if !st.Shared() && (cfg.Replicas > 1 || cfg.ReplicaIndex >= 0) {
		return nil, fmt.Errorf("%w: store.backend %q keeps resources inside one process; several replicas need %q", ErrStoreNotShared, cfg.Store.Backend, StoreGORM)
	}
	return meteredStore{ResourceStore: st, m: m}, nil
}

func newDiscovery(cfg Config, st store.ResourceStore, log logr.Logger) *discovery.Discovery {
	return discovery.New(discovery.Config{URL: cfg.Registry.URL, Resync: cfg.Registry.Resync.D()}, st, registrySources(), log)
}

func newEngine(cfg Config, st store.ResourceStore, log logr.Logger) *engine.Engine {
	return engine.New(engine.Config{URL: cfg.Engine.URL, Resync: cfg.Engine.Resync.D()}, st, engineSources(), log)
}

type runtimeParams struct {
	fx.In

	Config     Config
	Log        logr.Logger
	Elector    leader.Elector
	Store      store.ResourceStore
	Components []runtime.Component `group:"components"`
}

func newRuntime(p runtimeParams) (*runtime.Runtime, error) {
	return runtime.New(p.Log.WithName("runtime"), p.Elector, p.Components, runtime.Options{
		DrainTimeout: p.Config.Runtime.DrainTimeout.D(),
		Resetter:     p.Store,
	})
}

func newAPI(cfg Config, rt *runtime.Runtime, el leader.Elector, st store.ResourceStore, m *Metrics, started *atomic.Bool, console *Console,
	members *membership.Table, log logr.Logger) *API {
	m.watchState(rt.Status, lastRenewal(rt), time.Now)
	m.watchPath(rt.Leadership)
	return &API{
		Status:        rt.Status,
		Started:       started.Load,
		LastRenewal:   lastRenewal(rt),
		Lease:         el,
		Store:         st,
		Registry:      m.Registry,
		LeaseDuration: cfg.Election.LeaseDuration.D(),
		Election:      m.Election,
		Members:       membershipReader(cfg, members),
		Replica:       cfg.ReplicaIndex,
		Kinds:         servedKinds(cfg),
		Log:           log.WithName("api"),
		Console:       console,
		Subscribe:     rt.Subscribe,
		Pprof:         cfg.HTTP.Pprof,
	}
}

func newReplicaServer(cfg Config, api *API, log logr.Logger) *httpServer {
	s := newHTTPServer(cfg.HTTPAddress(), api.Handler(), cfg.HTTP.ShutdownTimeout.D(), log.WithName("http"))
	s.srv.RegisterOnShutdown(api.CloseStreams) // Shutdown waits for open handlers: end the streams
	return s
}

// wireLifecycle appends the hooks whose order matters, after the store's
// migration: role watch, HTTP, runtime; fx stops them in reverse.
func wireLifecycle(lc fx.Lifecycle, rt *runtime.Runtime, srv *httpServer, m *Metrics, started *atomic.Bool) {
	var watch *roleWatch
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error { watch = startRoleWatch(rt, m); return nil },
		OnStop:  func(context.Context) error { watch.stop(); return nil },
	})
	lc.Append(fx.Hook{OnStart: srv.start, OnStop: srv.stop})
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := rt.Start(ctx); err != nil {
				return err
			}
			started.Store(true)
			return nil
		},
		OnStop: rt.Stop,
	})
}

// startTimeout bounds a replica's start: opening tables, Init of every
// component, binding the HTTP address.
const startTimeout = time.Minute
