package runtime

import (
	"context"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// The runtime consumes leader.Elector: Campaign blocks until this replica
// leads (or ctx ends) and returns the term. The runtime calls Prepare once at
// Start and Campaign again only after the previous Leadership's context
// ended and its leader components returned.

// NoElection is the single-replica mode: Campaign wins at once and the term
// lasts until Resign or until Campaign's context ends. Every term has the
// same fixed Term (number 1) and no epoch row exists, so a shared store that
// fences its writes refuses them: use it only with a store that is itself
// single-replica (the app rejects the other combination). Running two
// replicas in this mode is a split brain; nothing detects it.
type NoElection struct {
	term leader.Term
}

var _ leader.Elector = (*NoElection)(nil)

// NewNoElection returns the single-replica elector for election name, held
// by identity ("" means leader.NewIdentity()).
func NewNoElection(name, identity string) *NoElection {
	if identity == "" {
		identity = leader.NewIdentity()
	}
	return &NoElection{term: leader.Term{Election: name, Holder: identity, Number: 1}}
}

// Prepare does nothing: there is no election to set up.
func (n *NoElection) Prepare(context.Context) error { return nil }

// Identity is the holder name of the fixed term.
func (n *NoElection) Identity() string { return n.term.Holder }

// Campaign returns a term at once, unless ctx has already ended.
func (n *NoElection) Campaign(ctx context.Context) (leader.Leadership, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	tctx, cancel := context.WithCancelCause(leader.WithTerm(ctx, n.term))
	return &fixedTerm{term: n.term, ctx: tctx, cancel: cancel, since: time.Now()}, nil
}

// Observed reports this replica as the holder.
func (n *NoElection) Observed() leader.Record {
	return leader.Record{Election: n.term.Election, Holder: n.term.Holder, Term: n.term.Number, Backend: "none"}
}

// Leader is Observed: there is nothing to read.
func (n *NoElection) Leader(context.Context) (leader.Record, error) { return n.Observed(), nil }

type fixedTerm struct {
	term   leader.Term
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
	since  time.Time
}

func (f *fixedTerm) Term() leader.Term        { return f.term }
func (f *fixedTerm) Context() context.Context { return f.ctx }

// Done is closed with the context: there is no renew loop to wait for.
func (f *fixedTerm) Done() <-chan struct{} { return f.ctx.Done() }

// LastRenewal is now: nothing can take the term away.
func (f *fixedTerm) LastRenewal() time.Time { return time.Now() }

// ValidUntil is never reached: no other replica campaigns.
func (f *fixedTerm) ValidUntil() time.Time { return time.Now().Add(365 * 24 * time.Hour) }

func (f *fixedTerm) Resign(context.Context) error {
	f.once.Do(func() { f.cancel(leader.ErrResigned) })
	return nil
}
