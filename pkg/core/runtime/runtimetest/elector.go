// Package runtimetest has test doubles for code that runs under the runtime:
// an Elector whose terms the test grants and ends, so that a component's
// behaviour across lose and regain can be specified without a database.
package runtimetest

import (
	"context"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// Elector is a runtime.Elector that wins a Campaign each time the test calls
// Grant and loses the current term when the test calls Lose. Terms are
// numbered 1, 2, 3, ... and carried by the term context like real ones.
type Elector struct {
	// Election and Holder name the terms; defaults "test" and "fake".
	Election, Holder string
	// OnEvent, when set, is told "campaign" when a Campaign begins and
	// "released" when a term is resigned, on the caller's goroutine.
	OnEvent func(event string)

	grants chan struct{}

	mu      sync.Mutex
	number  int64
	current *Leadership
}

var _ runtime.Elector = (*Elector)(nil)

// NewElector returns an elector that has granted nothing yet.
func NewElector() *Elector {
	return &Elector{Election: "test", Holder: "fake", grants: make(chan struct{})}
}

// Campaign blocks until Grant or ctx ends.
func (e *Elector) Campaign(ctx context.Context) (runtime.Leadership, error) {
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
	e.current = &Leadership{e: e, term: t, ctx: lctx, cancel: cancel}
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
}

var _ runtime.Leadership = (*Leadership)(nil)

// Term is the term's fencing token.
func (l *Leadership) Term() leader.Term { return l.term }

// Context is the term context; it ends on Lose or Resign.
func (l *Leadership) Context() context.Context { return l.ctx }

// Done is closed when the term ended (there is no renew loop to wait for).
func (l *Leadership) Done() <-chan struct{} { return l.ctx.Done() }

// Resign ends the term and reports "released" once.
func (l *Leadership) Resign(context.Context) error {
	l.cancel(leader.ErrResigned)
	l.once.Do(func() { l.e.event("released") })
	return nil
}
