package leader

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Why a term ended; context.Cause of a term context is one of these
// (possibly wrapped), or the cause of the context Campaign was given.
var (
	// ErrDeadlinePassed: no renew succeeded within RenewDeadline of the last
	// successful one.
	ErrDeadlinePassed = errors.New("leadership lost: renew deadline passed")
	// ErrLeaseLost: the lease row names another holder or term.
	ErrLeaseLost = errors.New("leadership lost: lease taken or released")
	// ErrResigned: the holder resigned.
	ErrResigned = errors.New("leadership resigned")
)

// Observer receives every renew attempt of a leader, for metrics. It is
// called on the renew goroutine and must return quickly.
type Observer interface {
	ObserveRenew(latency time.Duration, err error)
}

// Clock is the elector's source of local time. The elector only measures
// intervals with it (Go's monotonic reading); it never compares a local time
// with a database time. Tests inject skew here.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Option configures an Elector.
type Option func(*Elector)

// WithLogger sets the logger for transitions; the default discards.
func WithLogger(l logr.Logger) Option { return func(e *Elector) { e.log = l } }

// WithObserver reports renew attempts to o.
func WithObserver(o Observer) Option { return func(e *Elector) { e.observer = o } }

// WithClock replaces the local clock.
func WithClock(c Clock) Option { return func(e *Elector) { e.clock = c } }

// WithIdentity sets the holder identity; the default is NewIdentity().
func WithIdentity(id string) Option { return func(e *Elector) { e.identity = id } }

// Elector campaigns for one election on behalf of one holder. Campaign
// blocks until this holder leads and returns a Leadership whose context
// lasts exactly as long as the holder may be sure it leads.
type Elector struct {
	lease    *Lease
	cfg      Config
	identity string
	log      logr.Logger
	observer Observer
	clock    Clock

	mu       sync.Mutex
	observed Record
}

// NewElector validates cfg and returns an elector on lease.
func NewElector(lease *Lease, cfg Config, opts ...Option) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Elector{lease: lease, cfg: cfg, log: logr.Discard(), clock: realClock{}}
	for _, o := range opts {
		o(e)
	}
	if e.identity == "" {
		e.identity = NewIdentity()
	}
	if err := validateHolder(e.identity); err != nil {
		return nil, err
	}
	e.log = e.log.WithValues("election", cfg.Name, "identity", e.identity)
	return e, nil
}

// Identity is the holder name this elector campaigns as.
func (e *Elector) Identity() string { return e.identity }

// Config returns the validated configuration.
func (e *Elector) Config() Config { return e.cfg }

// Observed returns the lease as this elector last saw it, without a query.
func (e *Elector) Observed() Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed
}

// Leader reads the current lease from the database.
func (e *Elector) Leader(ctx context.Context) (Record, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	rec, err := e.lease.Get(ctx, e.cfg.Name)
	if err == nil {
		e.observe(rec)
	}
	return rec, err
}

func (e *Elector) observe(r Record) {
	e.mu.Lock()
	e.observed = r
	e.mu.Unlock()
}

// Campaign tries at once, then every RetryPeriod with jitter, and also when
// the observed lease expires if that is sooner, until it acquires the lease
// or ctx ends. Database errors are retried; only ctx ends a campaign early.
// The returned Leadership's context is derived from ctx.
func (e *Elector) Campaign(ctx context.Context) (*Leadership, error) {
	for {
		sent := e.clock.Now()
		rec, err := e.tryAcquire(ctx)
		if err == nil {
			return e.lead(ctx, rec, sent), nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		wait := e.jittered()
		if errors.Is(err, ErrHeld) {
			if left := rec.Remaining() + time.Millisecond; left < wait {
				wait = left
			}
		} else {
			e.log.V(1).Info("acquire attempt failed", "error", err.Error())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
}

// tryAcquire reads the lease first and takes the row lock only when the
// lease looks free, expired or ours, so that followers do not queue behind
// the leader's renewals.
func (e *Elector) tryAcquire(ctx context.Context) (Record, error) {
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	rec, err := e.lease.Get(opCtx, e.cfg.Name)
	if err != nil {
		return Record{}, err
	}
	e.observe(rec)
	if rec.Held() && rec.Holder != e.identity {
		return rec, ErrHeld
	}
	rec, err = e.lease.TryAcquire(opCtx, e.cfg.Name, e.identity, e.cfg.LeaseDuration)
	if err == nil || errors.Is(err, ErrHeld) {
		e.observe(rec)
	}
	return rec, err
}

func (e *Elector) jittered() time.Duration {
	return e.cfg.RetryPeriod + time.Duration(rand.Float64()*e.cfg.JitterFactor*float64(e.cfg.RetryPeriod))
}

// lead starts the renew goroutine of a fresh term. sent is the local instant
// the successful acquire was sent: the database set the expiry at or after
// it, so sent+RenewDeadline is always before the expiry in real time (up to
// clock-rate skew, which LeaseDuration-RenewDeadline absorbs).
func (e *Elector) lead(parent context.Context, rec Record, sent time.Time) *Leadership {
	term := rec.TermOf()
	ctx, cancel := context.WithCancelCause(WithTerm(parent, term))
	l := &Leadership{
		e:        e,
		term:     term,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		renewed:  sent,
		deadline: sent.Add(e.cfg.RenewDeadline),
		expires:  rec.ExpiresAt,
	}
	e.log.Info("lease acquired", "holder", term.Holder, "term", term.Number, "transitions", rec.Transitions, "expires", rec.ExpiresAt)
	go l.renewLoop()
	return l
}

// Leadership is one term of this elector. Its context carries the Term and is
// cancelled, with a cause, the moment the holder can no longer be sure it
// leads: renew deadline passed, lease lost, Resign, or the campaign's parent
// context ended.
type Leadership struct {
	e      *Elector
	term   Term
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}

	mu       sync.Mutex
	renewed  time.Time // local send instant of the last successful acquire or renew
	deadline time.Time
	expires  time.Time // database clock
	resigned bool
}

// Term is the fencing token of this tenure.
func (l *Leadership) Term() Term { return l.term }

// Context is the term context.
func (l *Leadership) Context() context.Context { return l.ctx }

// Done is closed when the renew goroutine has stopped; after that nothing of
// this term touches the database except Resign's release.
func (l *Leadership) Done() <-chan struct{} { return l.done }

// LastRenewal returns the local instant the last successful renew was sent.
func (l *Leadership) LastRenewal() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewed
}

// ExpiresAt returns the expiry written by the last successful renew, by the
// database clock.
func (l *Leadership) ExpiresAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.expires
}

// Resign ends the term: it cancels the term context, waits for the renew
// goroutine, then releases the lease (conditional on holder and term) so a
// follower can take over within one retry period. A term already lost is
// not an error. Resign is idempotent.
func (l *Leadership) Resign(ctx context.Context) error {
	l.cancel(ErrResigned)
	<-l.done
	l.mu.Lock()
	already := l.resigned
	l.resigned = true
	l.mu.Unlock()
	if already {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.e.cfg.OpTimeout)
	defer cancel()
	rec, err := l.e.lease.Release(ctx, l.term)
	switch {
	case err == nil:
		l.e.observe(rec)
		l.e.log.Info("lease released", "holder", l.term.Holder, "term", l.term.Number)
		return nil
	case errors.Is(err, ErrNotHolder):
		return nil
	default:
		return fmt.Errorf("resign term %d: %w", l.term.Number, err)
	}
}

func (l *Leadership) renewLoop() {
	defer close(l.done)
	e := l.e
	watchdog := time.AfterFunc(l.deadline.Sub(e.clock.Now()), func() { l.cancel(ErrDeadlinePassed) })
	defer watchdog.Stop()
	tick := time.NewTicker(e.cfg.RetryPeriod)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-l.ctx.Done():
			l.logEnd(context.Cause(l.ctx))
			return
		case <-tick.C:
		}
		left := l.deadline.Sub(e.clock.Now())
		if left <= 0 {
			l.cancel(ErrDeadlinePassed)
			continue
		}
		sent := e.clock.Now()
		rec, err := l.renew(min(left, e.cfg.OpTimeout))
		latency := e.clock.Now().Sub(sent)
		if e.observer != nil {
			e.observer.ObserveRenew(latency, err)
		}
		switch {
		case err == nil:
			if !watchdog.Stop() {
				continue // the deadline passed while the statement ran: the term is over
			}
			l.mu.Lock()
			l.renewed, l.deadline, l.expires = sent, sent.Add(e.cfg.RenewDeadline), rec.ExpiresAt
			l.mu.Unlock()
			watchdog.Reset(l.deadline.Sub(e.clock.Now()))
			e.observe(rec)
			if failures > 0 {
				e.log.Info("lease renewed late", "holder", l.term.Holder, "term", l.term.Number, "failedAttempts", failures, "latency", latency)
				failures = 0
			}
		case errors.Is(err, ErrNotHolder):
			e.observe(rec)
			l.cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
		default:
			failures++
			e.log.V(1).Info("renew failed", "holder", l.term.Holder, "term", l.term.Number, "error", err.Error())
		}
	}
}

func (l *Leadership) renew(timeout time.Duration) (Record, error) {
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	return l.e.lease.Renew(ctx, l.term, l.e.cfg.LeaseDuration)
}

func (l *Leadership) logEnd(cause error) {
	if errors.Is(cause, ErrResigned) {
		return // Resign logs the release
	}
	l.e.log.Info("lease lost", "holder", l.term.Holder, "term", l.term.Number, "reason", cause.Error())
}
