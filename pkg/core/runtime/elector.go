package runtime

import (
	"context"
	"fmt"
	"sync"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Elector is what the runtime needs of an election: a Campaign that blocks
// until this replica leads (or ctx ends) and returns the term. The runtime
// calls Campaign again only after the previous Leadership's context ended and
// its leader components returned. LeaseElector adapts *leader.Elector;
// NoElection is the explicit single-replica mode; tests use fakes.
type Elector interface {
	Campaign(ctx context.Context) (Leadership, error)
}

// Leadership is one term won by Campaign.
type Leadership interface {
	// Term is the fencing token of the term.
	Term() leader.Term
	// Context is cancelled the moment this replica can no longer be sure it
	// leads. It is derived from the context given to Campaign.
	Context() context.Context
	// Done is closed when the election stopped working for this term
	// (its renew loop returned).
	Done() <-chan struct{}
	// Resign ends the term and releases the lease so that a follower can take
	// over at once. It is idempotent, and a term already lost is not an error.
	Resign(ctx context.Context) error
}

// Preparer is an optional Elector method the runtime calls once at Start,
// before any component's Init. An error fails Start: the runtime never runs
// leader components without a working election (fail closed).
type Preparer interface {
	Prepare(ctx context.Context) error
}

// LeaderObserver is an optional Elector method that reports the lease as last
// seen, without a query; Status uses it to name the leader while following.
type LeaderObserver interface {
	Observed() leader.Record
}

// LeaseElector adapts *leader.Elector on a GORM lease to Elector. Prepare
// creates the lease table.
type LeaseElector struct {
	lease *leader.Lease
	e     *leader.Elector
}

var (
	_ Elector        = (*LeaseElector)(nil)
	_ Preparer       = (*LeaseElector)(nil)
	_ LeaderObserver = (*LeaseElector)(nil)
)

// NewLeaseElector returns the election of cfg on db. It does no I/O: the
// runtime calls Prepare (lease.Migrate) at Start.
func NewLeaseElector(db *gorm.DB, cfg leader.Config, opts ...leader.Option) (*LeaseElector, error) {
	lease, err := leader.NewLease(db)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrElectionSetup, err)
	}
	e, err := leader.NewElector(lease, cfg, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrElectionSetup, err)
	}
	return &LeaseElector{lease: lease, e: e}, nil
}

// Prepare creates table leader_leases if it does not exist.
func (l *LeaseElector) Prepare(ctx context.Context) error {
	if err := l.lease.Migrate(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrElectionSetup, err)
	}
	return nil
}

// Campaign blocks until this holder leads or ctx ends.
func (l *LeaseElector) Campaign(ctx context.Context) (Leadership, error) {
	ls, err := l.e.Campaign(ctx)
	if err != nil {
		return nil, err
	}
	return ls, nil
}

// Observed returns the lease as the elector last saw it.
func (l *LeaseElector) Observed() leader.Record { return l.e.Observed() }

// Elector returns the adapted elector (identity, config, Leader queries).
func (l *LeaseElector) Elector() *leader.Elector { return l.e }

// Lease returns the lease backend.
func (l *LeaseElector) Lease() *leader.Lease { return l.lease }

// NoElection is the single-replica mode: Campaign wins at once and the term
// lasts until Resign or until Campaign's context ends. Every term has the
// same fixed Term (number 1) and no lease row exists, so a store that fences
// writes against the lease table refuses them: use it only with a store that
// is itself single-replica. Running two replicas in this mode is a split
// brain; nothing detects it.
type NoElection struct {
	term leader.Term
}

// NewNoElection returns the single-replica elector for election name, held
// by identity ("" means leader.NewIdentity()).
func NewNoElection(name, identity string) *NoElection {
	if identity == "" {
		identity = leader.NewIdentity()
	}
	return &NoElection{term: leader.Term{Election: name, Holder: identity, Number: 1}}
}

// Campaign returns a term at once, unless ctx has already ended.
func (n *NoElection) Campaign(ctx context.Context) (Leadership, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	tctx, cancel := context.WithCancelCause(leader.WithTerm(ctx, n.term))
	return &fixedTerm{term: n.term, ctx: tctx, cancel: cancel}, nil
}

// Observed reports this replica as the holder.
func (n *NoElection) Observed() leader.Record {
	return leader.Record{Election: n.term.Election, Holder: n.term.Holder, Term: n.term.Number}
}

type fixedTerm struct {
	term   leader.Term
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
}

func (f *fixedTerm) Term() leader.Term        { return f.term }
func (f *fixedTerm) Context() context.Context { return f.ctx }

// Done is closed with the context: there is no renew loop to wait for.
func (f *fixedTerm) Done() <-chan struct{} { return f.ctx.Done() }

func (f *fixedTerm) Resign(context.Context) error {
	f.once.Do(func() { f.cancel(leader.ErrResigned) })
	return nil
}
