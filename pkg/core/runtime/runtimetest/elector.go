// Package runtimetest has test doubles for code that runs under the runtime:
// an Elector whose terms the test grants and ends, so that a component's
// behaviour across lose and regain can be specified without a database.
package runtimetest

import (
	"context"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Elector is a leader.Elector that wins a Campaign each time the test calls
// Grant and loses the current term when the test calls Lose. Terms are
// numbered 1, 2, 3, ... and carried by the term context like real ones.
type Elector struct {
	// Election and Holder name the terms; defaults "test" and "fake".
	Election, Holder string
	// OnEvent, when set, is told "campaign" when a Campaign begins and
	// "released" when a term is resigned, on the caller's goroutine.
	OnEvent func(event string)
	// ValidFor is how long a term stays valid after Lose (its ValidUntil);
	// zero means no bound, as if no other replica could ever be elected.
	ValidFor time.Duration

	grants chan struct{}

	mu      sync.Mutex
	number  int64
	current *Leadership
}

var _ leader.Elector = (*Elector)(nil)

// NewElector returns an elector that has granted nothing yet.
func NewElector() *Elector {
	return &Elector{Election: "test", Holder: "fake", grants: make(chan struct{})}
}

// Prepare does nothing.
func (e *Elector) Prepare(context.Context) error { return nil }

// Identity is Holder.
func (e *Elector) Identity() string { return e.Holder }

// Observed names the current term's holder while it lasts.
func (e *Elector) Observed() leader.Record {
	l := e.Current()
	if l == nil || l.ctx.Err() != nil {
		return leader.Record{Election: e.Election, Backend: "fake"}
	}
	return leader.Record{Election: e.Election, Holder: l.term.Holder, Term: l.term.Number, Backend: "fake",
		Now: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
}

// Leader is Observed.
func (e *Elector) Leader(context.Context) (leader.Record, error) { return e.Observed(), nil }

// Campaign blocks until Grant or ctx ends.
func (e *Elector) Campaign(ctx context.Context) (leader.Leadership, error) {
	e.event("campaign")
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-e.grants:
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.number++
	t := leader.Term{Election: e.Election, Holder: e.Holder, Number: e.number, AcquiredAt: time.Now()}
	lctx, cancel := context.WithCancelCause(leader.WithTerm(ctx, t))
	e.current = &Leadership{e: e, term: t, ctx: lctx, cancel: cancel, granted: time.Now()}
	return e.current, nil
}

// Grant lets the pending (or next) Campaign win. It returns ctx's error if
// nobody campaigns before ctx ends.
func (e *Elector) Grant(ctx context.Context) error {
	select {
	case e.grants <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Lose ends the current term with cause, as a lost lease would
// (leader.ErrLeaseLost is the usual cause). It does nothing before the
// first term.
func (e *Elector) Lose(cause error) {
	if l := e.Current(); l != nil {
		l.mu.Lock()
		if l.lostAt.IsZero() {
			l.lostAt = time.Now()
		}
		l.mu.Unlock()
		l.cancel(cause)
	}
}

// Current is the latest term granted, or nil.
func (e *Elector) Current() *Leadership {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.current
}

func (e *Elector) event(name string) {
	if e.OnEvent != nil {
		e.OnEvent(name)
	}
}

// Leadership is one term of an Elector.
type Leadership struct {
	e      *Elector
	term   leader.Term
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once

	granted time.Time
	mu      sync.Mutex
	lostAt  time.Time
}

var _ leader.Leadership = (*Leadership)(nil)

// Term is the term's fencing token.
func (l *Leadership) Term() leader.Term { return l.term }

// Context is the term context; it ends on Lose or Resign.
func (l *Leadership) Context() context.Context { return l.ctx }

// Done is closed when the term ended (there is no renew loop to wait for).
func (l *Leadership) Done() <-chan struct{} { return l.ctx.Done() }

// LastRenewal is when the term was granted.
func (l *Leadership) LastRenewal() time.Time { return l.granted }

// ValidUntil is ValidFor after Lose, or unbounded.
func (l *Leadership) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.e.ValidFor == 0 || l.lostAt.IsZero() {
		return time.Now().Add(365 * 24 * time.Hour)
	}
	return l.lostAt.Add(l.e.ValidFor)
}

// Resign ends the term and reports "released" once.
func (l *Leadership) Resign(context.Context) error {
	l.cancel(leader.ErrResigned)
	l.once.Do(func() { l.e.event("released") })
	return nil
}
