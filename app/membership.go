package app

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/membership"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// Every replica records itself in the membership table (package
// membership) of Admin's database, whatever the election backend: at most
// one statement per election.retryPeriod, a row listed as gone after
// election.leaseDuration of silence, removed on a graceful stop.

// newMembership returns the table; a start hook creates it before the
// runtime starts.
func newMembership(lc fx.Lifecycle, db *gorm.DB) (*membership.Table, error) {
	t, err := membership.NewTable(db)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.StartHook(t.Migrate))
	return t, nil
}

// recordMembership runs this replica's Recorder from before the runtime
// starts until after it stopped: the last state written is the drained one,
// then the row is deleted. It is invoked before wireLifecycle so that fx
// stops it after the runtime.
func recordMembership(lc fx.Lifecycle, cfg Config, t *membership.Table, el leader.Elector, rt *runtime.Runtime,
	srv *httpServer, m *Metrics, log logr.Logger) error {
	host, _ := os.Hostname()
	self := func() membership.Member {
		st := rt.Status()
		addr := srv.Address()
		if _, port, _ := splitAddress(cfg.HTTPAddress()); addr == "" && port != 0 {
			addr = cfg.HTTPAddress() // not bound yet: where it will be
		}
		mb := membership.Member{Identity: el.Identity(), Address: addr, Version: Version, Host: host,
			PID: os.Getpid(), Role: string(st.Role), Error: m.Election().LastError}
		if st.Role == runtime.RoleLeading || st.Role == runtime.RoleDraining {
			mb.Term = st.Term.Number
		}
		return mb
	}
	rec, err := membership.NewRecorder(t, membershipConfig(cfg), self, log.WithName("membership"))
	if err != nil {
		return err
	}
	var (
		cancel context.CancelFunc
		done   chan error
	)
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			done = make(chan error, 1)
			go func() { done <- rec.Run(ctx) }()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					// Not a failed stop: the row is listed as gone after
					// the lease duration, and pruned later.
					log.Error(err, "could not remove this replica from the membership table")
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	return nil
}

func membershipConfig(cfg Config) membership.Config {
	return membership.Config{
		Election:  cfg.Election.Name,
		Period:    cfg.Election.RetryPeriod.D(),
		GoneAfter: cfg.Election.LeaseDuration.D(),
		OpTimeout: cfg.Election.OpTimeout.D(),
	}
}

// ReplicasInfo is the body of /api/v1/replicas: the membership table, the
// lease holder's row marked.
type ReplicasInfo struct {
	Election string `json:"election"`
	// DatabaseNow is the database's clock at the read; GoneAfterMs the
	// silence after which a replica is gone.
	DatabaseNow time.Time `json:"databaseNow"`
	GoneAfterMs int64     `json:"goneAfterMs"`
	// Leader is the lease as this replica last observed it; absent when
	// the lease is free.
	Leader   *LeaderRef    `json:"leader,omitempty"`
	Replicas []ReplicaInfo `json:"replicas"`
}

// LeaderRef names the lease holder.
type LeaderRef struct {
	Holder string `json:"holder"`
	Term   int64  `json:"term"`
}

// ReplicaInfo is one replica of a ReplicasInfo.
type ReplicaInfo struct {
	membership.Replica
	// Leader is true on the lease holder's row.
	Leader bool `json:"leader"`
}

// replicasInfo marks the holder of rec in view.
func replicasInfo(view membership.View, rec leader.Record) ReplicasInfo {
	info := ReplicasInfo{Election: view.Election, DatabaseNow: view.Now, GoneAfterMs: view.GoneAfterMs,
		Replicas: make([]ReplicaInfo, 0, len(view.Replicas))}
	if rec.Held() {
		info.Leader = &LeaderRef{Holder: rec.Holder, Term: rec.Term}
	}
	for _, r := range view.Replicas {
		info.Replicas = append(info.Replicas, ReplicaInfo{Replica: r, Leader: rec.Held() && r.Identity == rec.Holder})
	}
	return info
}

// MembershipReader is what the API reads of the membership table.
type MembershipReader func(ctx context.Context) (membership.View, error)

func membershipReader(cfg Config, t *membership.Table) MembershipReader {
	return func(ctx context.Context) (membership.View, error) {
		return t.List(ctx, cfg.Election.Name, cfg.Election.LeaseDuration.D())
	}
}

func (a *API) replicas(w http.ResponseWriter, r *http.Request) {
	if a.Members == nil {
		writeError(w, http.StatusNotFound, "this replica keeps no membership table")
		return
	}
	view, err := a.Members(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, replicasInfo(view, a.Lease.Observed()))
}
