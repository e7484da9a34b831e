package app

import (
	"context"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// election is the runtime's Elector on the lease table that also remembers
// the current term's Leadership, so that /healthz and /metrics can read the
// instant of its last successful renew.
type election struct {
	le *runtime.LeaseElector

	mu      sync.Mutex
	current *leader.Leadership
}

var (
	_ runtime.Elector        = (*election)(nil)
	_ runtime.Preparer       = (*election)(nil)
	_ runtime.LeaderObserver = (*election)(nil)
)

func newElection(le *runtime.LeaseElector) *election { return &election{le: le} }

// Prepare creates the lease table.
func (e *election) Prepare(ctx context.Context) error { return e.le.Prepare(ctx) }

// Campaign blocks until this replica leads or ctx ends.
func (e *election) Campaign(ctx context.Context) (runtime.Leadership, error) {
	ls, err := e.le.Elector().Campaign(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.current = ls
	e.mu.Unlock()
	return ls, nil
}

// Observed returns the lease as last seen, without a query.
func (e *election) Observed() leader.Record { return e.le.Observed() }

// Leader reads the lease from the database.
func (e *election) Leader(ctx context.Context) (leader.Record, error) {
	return e.le.Elector().Leader(ctx)
}

// Identity is this replica's holder name.
func (e *election) Identity() string { return e.le.Elector().Identity() }

// LastRenewal is the local send instant of the last successful acquire or
// renew of this replica's latest term, live or not; ok is false before the
// first term. Callers pair it with the runtime's role.
func (e *election) LastRenewal() (last time.Time, ok bool) {
	e.mu.Lock()
	ls := e.current
	e.mu.Unlock()
	if ls == nil {
		return time.Time{}, false
	}
	return ls.LastRenewal(), true
}
