package leader

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"gorm.io/gorm"
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
	// ErrClockJump: the database clock moved faster than this replica's
	// monotonic clock by more than the skew margin, so the lease may expire
	// early by the database's reckoning: the holder steps down.
	ErrClockJump = errors.New("leadership given up: database clock jumped forward")
)

// Observer receives every renew attempt of a leader, for metrics. It is
// called on the renew goroutine and must return quickly.
type Observer interface {
	ObserveRenew(latency time.Duration, err error)
}

// AcquireObserver, when the Observer also implements it, receives every
// campaign attempt: nil on a win, an error wrapping ErrHeld while another
// holder owns the lease, any other error when the attempt itself failed.
type AcquireObserver interface {
	ObserveAcquire(latency time.Duration, err error)
}

// Clock is the elector's source of local time. The elector only measures
// intervals with it (Go's monotonic reading); it never compares a local time
// with a database time. Tests inject skew here.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Option configures a LeaseElector.
type Option func(*LeaseElector)

// WithLogger sets the logger for transitions; the default discards.
func WithLogger(l logr.Logger) Option { return func(e *LeaseElector) { e.log = l } }

// WithObserver reports renew (and, with AcquireObserver, acquire) attempts to o.
func WithObserver(o Observer) Option { return func(e *LeaseElector) { e.observer = o } }

// WithClock replaces the local clock.
func WithClock(c Clock) Option { return func(e *LeaseElector) { e.clock = c } }

// WithIdentity sets the holder identity; the default is NewIdentity().
func WithIdentity(id string) Option { return func(e *LeaseElector) { e.identity = id } }

// LeaseElector is the SQL lease backend of Elector: it campaigns for one
// election on behalf of one holder through the lease row, minting each term
// in the same transaction as the acquisition.
type LeaseElector struct {
	lease    *Lease
	cfg      Config
	identity string
	log      logr.Logger
	observer Observer
	clock    Clock

	// openLock opens the session lock (a seam for tests).
	openLock func(ctx context.Context, db *gorm.DB, election string, counted func()) (sessionLock, error)
	trouble  *Trouble

	mu         sync.Mutex
	observed   Record
	badLease   string        // holder and expiry of the last implausible lease warned about
	lockBroken string        // why the session lock is off for this elector's life
	window     time.Duration // the lock window the last term ended on (0: Config.LockWindow)
	tuner      windowTuner   // the lock window's tuner as the last term left it
	// holdMost overrides the longest hold of a grown window (0: holdMost;
	// a seam for specs, which cannot wait 30 s).
	holdMost int
}

var (
	_ Elector       = (*LeaseElector)(nil)
	_ ForceReleaser = (*LeaseElector)(nil)
)

// NewLeaseElector validates cfg and returns the elector of cfg.Name on db,
// minting terms with epochs (on the same database). It does no I/O: Prepare
// creates the tables.
func NewLeaseElector(db *gorm.DB, epochs *Epochs, cfg Config, opts ...Option) (*LeaseElector, error) {
	lease, err := newLease(db, epochs)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &LeaseElector{lease: lease, cfg: cfg, log: logr.Discard(), clock: realClock{}, openLock: openSessionLock}
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
	e.trouble = NewTrouble(e.log)
	e.trouble.now = e.clock.Now
	return e, nil
}

// Prepare creates the lease and epoch tables if they do not exist.
func (e *LeaseElector) Prepare(ctx context.Context) error { return e.lease.Migrate(ctx) }

// Identity is the holder name this elector campaigns as.
func (e *LeaseElector) Identity() string { return e.identity }

// Config returns the validated configuration.
func (e *LeaseElector) Config() Config { return e.cfg }

// Lease returns the lease backend.
func (e *LeaseElector) Lease() *Lease { return e.lease }

// Observed returns the lease as this elector last saw it, without a query.
func (e *LeaseElector) Observed() Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed
}

// Leader reads the current lease from the database.
func (e *LeaseElector) Leader(ctx context.Context) (Record, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	rec, err := e.lease.Get(ctx, e.cfg.Name)
	if err == nil {
		e.observe(rec)
	}
	return rec, err
}

// ForceRelease frees the lease whoever holds it (see Lease.ForceRelease).
func (e *LeaseElector) ForceRelease(ctx context.Context) (Record, error) {
	return e.lease.ForceRelease(ctx, e.cfg.Name)
}

// observeRenewal records a renewal: the renew statement reads only the
// times, so the rest comes from the lease as last observed.
func (e *LeaseElector) observeRenewal(r Record) {
	e.mu.Lock()
	if o := e.observed; o.Holder == r.Holder && o.Term == r.Term {
		r.AcquiredAt, r.Transitions = o.AcquiredAt, o.Transitions
	}
	e.observed = r
	e.mu.Unlock()
}

func (e *LeaseElector) observe(r Record) {
	e.mu.Lock()
	e.observed = r
	e.mu.Unlock()
}

// Campaign tries at once, then every RetryPeriod with jitter, and also when
// the observed lease expires if that is sooner, until it acquires the lease
// or ctx ends. Database errors are retried (after re-creating the tables,
// in case they were dropped) and logged once per change of cause; only ctx
// ends a campaign early. The returned Leadership's context is derived from
// ctx.
//
// With FastFailover the campaign also holds a session lock connection: it
// waits for the lock instead of sleeping between attempts, and once it holds
// the lock it takes over a lock-fenced lease before it expires (see the
// package doc for the rule).
func (e *LeaseElector) Campaign(ctx context.Context) (Leadership, error) {
	c := e.newCandidacy()
	defer c.close()
	for {
		c.ensure(ctx)
		sent := e.clock.Now()
		rec, acq, checked, err := e.tryAcquire(ctx, c)
		if ao, ok := e.observer.(AcquireObserver); ok && ctx.Err() == nil && !errors.Is(err, errDeferred) {
			ao.ObserveAcquire(e.clock.Now().Sub(sent), err)
		}
		if err == nil {
			lock := c.handOff(acq)
			if rec, checked, err = e.spentWindow(ctx, rec, lock, checked); err == nil {
				e.trouble.Over()
				return e.lead(ctx, rec, sent, lock, checked), nil
			}
			// Neither lock-fenced in time nor lease-only: give it back.
			e.log.Info("term not led: a slow acquisition spent its lock window, and it could not be turned lease-only", "holder", rec.Holder, "term", rec.Term, "error", err.Error())
			e.giveBack(rec.TermOf())
			if lock != nil {
				_ = lock.close()
			}
			continue
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		wait := e.jittered()
		if at, ok := c.takeoverAt(rec); ok && errors.Is(err, ErrHeld) {
			// Holding the lock of a lock-fenced holder: take over once its
			// lock window has surely passed.
			wait = max(at.Sub(e.clock.Now()), 0)
		} else if errors.Is(err, errDeferred) {
			// wait a retry period for the lock holder
		} else if errors.Is(err, ErrHeld) {
			e.trouble.Over()
			e.checkPlausible(rec)
			if left := rec.Remaining() + time.Millisecond; left < wait {
				wait = left
			}
		} else {
			e.trouble.Fail(err)
			e.repair(ctx)
		}
		if err := c.wait(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// giveBack releases a term just acquired that will not be led, ending it
// in the epoch (best effort: else it expires).
func (e *LeaseElector) giveBack(t Term) {
	ctx, cancel := context.WithTimeout(WithEndReason(context.Background(), EndLock), e.cfg.OpTimeout)
	defer cancel()
	if rec, err := e.lease.Release(ctx, t); err == nil {
		e.observe(rec)
	}
}

// repair re-creates the tables after a failed attempt: a dropped lease or
// epoch table must not leave the cluster leaderless. CREATE TABLE IF NOT
// EXISTS is a no-op on a healthy database.
func (e *LeaseElector) repair(ctx context.Context) {
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	if err := e.lease.Migrate(opCtx); err != nil {
		e.log.V(1).Info("re-creating the election tables failed", "error", err.Error())
	}
}

// tryAcquire reads the lease first and takes the row lock only when the
// lease looks free, expired or ours, or when this candidate holds the
// session lock and may take over the lock-fenced holder now, so that
// followers do not queue behind the leader's renewals. It returns how the
// term was taken and, when lock-fenced, the start of the lock check that
// opens its lock window.
func (e *LeaseElector) tryAcquire(ctx context.Context, c *candidacy) (Record, acquisition, time.Time, error) {
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	rec, err := e.lease.Get(opCtx, e.cfg.Name)
	cancel()
	if err != nil {
		return Record{}, acquisition{}, time.Time{}, err
	}
	e.observe(rec)
	var old *Record
	if rec.Held() && rec.Holder == e.identity && rec.Path == PathLockFenced && !c.held {
		// Our own earlier lock-fenced term, whose lock another candidate
		// may hold now and take over with: re-taking it lease-only would
		// only hold that takeover up. Wait for the lock, or the lease.
		return rec, acquisition{}, time.Time{}, fmt.Errorf("%w: our own lock-fenced term %d until %s, without the lock", ErrHeld, rec.Term, rec.ExpiresAt.Format(time.RFC3339Nano))
	}
	if rec.Held() && rec.Holder != e.identity {
		c.passed = false
		at, ok := c.takeoverAt(rec)
		if !ok || e.clock.Now().Before(at) {
			return rec, acquisition{}, time.Time{}, fmt.Errorf("%w: %s until %s", ErrHeld, rec.Holder, rec.ExpiresAt.Format(time.RFC3339Nano))
		}
		old = &rec
	} else if c.lock != nil && !c.held && !c.passed && rec.Holder != e.identity {
		c.passed = true
		return rec, acquisition{}, time.Time{}, errDeferred
	}
	acq, checked := c.acquisition(ctx)
	opCtx, cancel = context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	if old != nil {
		if acq.lock.Server == "" {
			return rec, acquisition{}, time.Time{}, fmt.Errorf("%w: %s until %s (the session lock failed its check)", ErrHeld, rec.Holder, rec.ExpiresAt.Format(time.RFC3339Nano))
		}
		rec, err = e.lease.takeOver(opCtx, *old, e.identity, e.cfg.LeaseDuration, acq.lock, acq.window)
	} else {
		rec, err = e.lease.acquire(opCtx, e.cfg.Name, e.identity, e.cfg.LeaseDuration, acq)
	}
	if err == nil || errors.Is(err, ErrHeld) {
		e.observe(rec)
	}
	return rec, acq, checked, err
}

func (e *LeaseElector) jittered() time.Duration {
	return Jittered(e.cfg.RetryPeriod, e.cfg.JitterFactor)
}

// skewMargin is the part of LeaseDuration-RenewDeadline kept back for
// clock-rate skew and jumps: ValidUntil is the send instant of the last
// renew plus LeaseDuration minus this margin, and a database clock that runs
// ahead of the local one by more than it ends the term.
func (e *LeaseElector) skewMargin() time.Duration {
	return (e.cfg.LeaseDuration - e.cfg.RenewDeadline) / 2
}

// lead starts the renew goroutine of a fresh term. sent is the local instant
// the successful acquire was sent: the database set the expiry at or after
// it, so sent+RenewDeadline is always before the expiry in real time (up to
// clock-rate skew, which LeaseDuration-RenewDeadline absorbs).
//
// With lock, the term is lock-fenced: checked is the start of the lock
// check made just before the acquisition, and the term may act only until
// checked plus its lock window unless another check succeeds.
func (e *LeaseElector) lead(parent context.Context, rec Record, sent time.Time, lock sessionLock, checked time.Time) *leaseTerm {
	term := rec.TermOf()
	ctx, cancel := context.WithCancelCause(WithTerm(parent, term))
	l := &leaseTerm{
		e:         e,
		term:      term,
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		renewDone: make(chan struct{}),
		handover:  make(chan struct{}),
		renewed:   sent,
		deadline:  sent.Add(e.cfg.RenewDeadline),
		expires:   rec.ExpiresAt,
		lock:      lock,
		path:      rec.Path,
		reason:    rec.PathReason,
	}
	if lock != nil && lock.windowed() {
		l.window = cmp.Or(rec.LockWindow, e.lockWindow())
		if checked.IsZero() {
			l.lockState = lockLeaseOnly // see spentWindow
		} else {
			l.lockDeadline = checked.Add(l.window)
		}
	}
	e.log.Info("lease acquired", "holder", term.Holder, "term", term.Number, "transitions", rec.Transitions,
		"expires", rec.ExpiresAt.Format(time.RFC3339Nano), "path", rec.Path, "pathReason", rec.PathReason)
	l.loops.Add(1)
	go l.renewLoop()
	if lock != nil {
		l.loops.Add(1)
		go l.lockLoop()
	}
	go func() {
		l.loops.Wait()
		close(l.done)
	}()
	return l
}

// leaseTerm is one term of a LeaseElector. Its context carries the Term and
// is cancelled, with a cause, the moment the holder can no longer be sure it
// leads: renew deadline passed, lease lost, database clock jumped, Resign,
// or the campaign's parent context ended.
type leaseTerm struct {
	e      *LeaseElector
	term   Term
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	// renewDone is closed when the renew loop returned, handover when
	// Resign released the lease (the lock may go now).
	renewDone chan struct{}
	handover  chan struct{}
	loops     sync.WaitGroup

	mu       sync.Mutex
	renewed  time.Time // local send instant of the last successful acquire or renew
	deadline time.Time
	expires  time.Time // database clock
	resigned chan struct{}
	released error
	// lock is the session lock of a lock-fenced term (nil: lease-only),
	// lockDeadline the end of its window (zero: lease-only), window the
	// lock window it counts on (see window.go).
	lock         sessionLock
	lockDeadline time.Time
	window       time.Duration
	lockState    int // lockFenced, lockUnfencing or lockLeaseOnly (lockLoop)
	path, reason string
}

func (l *leaseTerm) Term() Term               { return l.term }
func (l *leaseTerm) Context() context.Context { return l.ctx }
func (l *leaseTerm) Done() <-chan struct{}    { return l.done }
func (l *leaseTerm) LastRenewal() time.Time   { l.mu.Lock(); defer l.mu.Unlock(); return l.renewed }
func (l *leaseTerm) ExpiresAt() time.Time     { l.mu.Lock(); defer l.mu.Unlock(); return l.expires }
func (l *leaseTerm) validUntil(t time.Time) time.Time {
	return t.Add(l.e.cfg.LeaseDuration - l.e.skewMargin())
}

// ValidUntil is the last renew's send instant plus LeaseDuration less the
// skew margin: the database cannot have expired the lease before then. A
// lock-fenced term's is at the latest the end of its lock window, after
// which a follower holding the lock may take over.
func (l *leaseTerm) ValidUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.validUntil(l.renewed)
	if !l.lockDeadline.IsZero() && l.lockDeadline.Before(v) {
		v = l.lockDeadline
	}
	return v
}

// Resign ends the term: it cancels the term context, waits for the renew
// goroutine, then releases the lease and ends the term in the epoch
// (conditional on holder and term) so a follower can take over within one
// retry period. It returns when that is done or ctx ends, whichever is
// first; the release itself is bounded by RenewDeadline (and the driver's I/O
// timeout). A term already lost is not an error. Resign is idempotent.
func (l *leaseTerm) Resign(ctx context.Context) error {
	how := endReason(ctx)
	if cause := context.Cause(l.ctx); cause != nil {
		how = endReasonOf(cause) // the term had ended before: say why
	}
	l.cancel(ErrResigned)
	l.mu.Lock()
	if l.resigned == nil {
		l.resigned = make(chan struct{})
		go l.release(how)
	}
	resigned := l.resigned
	l.mu.Unlock()
	select {
	case <-resigned:
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.released
	case <-ctx.Done():
		return fmt.Errorf("resign term %d: %w", l.term.Number, context.Cause(ctx))
	}
}

// release is Resign's work, on its own goroutine so that Resign can honour
// its context even when a statement ignores its own.
func (l *leaseTerm) release(how string) {
	var err error
	defer func() {
		l.mu.Lock()
		l.released = err
		close(l.resigned)
		l.mu.Unlock()
	}()
	<-l.renewDone
	// Bounded by the renew deadline, not OpTimeout: a release is worth
	// finishing on a slow database (it saves the followers the wait for the
	// expiry), and Resign's caller bounds its own wait with its context.
	ctx, cancel := context.WithTimeout(WithEndReason(context.Background(), how), l.e.cfg.RenewDeadline)
	defer cancel()
	rec, rerr := l.releaseLease(ctx)
	// The lease is free (or no longer ours): the lock may wake a follower.
	close(l.handover)
	<-l.done
	switch {
	case rerr == nil:
		l.e.observe(rec)
		l.e.log.Info("lease released", "holder", l.term.Holder, "term", l.term.Number)
	case errors.Is(rerr, ErrNotHolder):
	default:
		err = fmt.Errorf("resign term %d: %w", l.term.Number, rerr)
	}
}

// sleep waits d, or until ctx ends; it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// releaseLease releases the lease, again after a failure until ctx ends,
// pausing a little longer each time. Repeating is safe, as the release is
// conditional on the term (a repeat after a lost commit reports
// ErrNotHolder), and worth it: the statement that fails is often the first
// on a pooled connection the server had closed (an idle timeout, a KILL),
// which the pool discards after that failure.
func (l *leaseTerm) releaseLease(ctx context.Context) (Record, error) {
	var pause time.Duration
	for {
		rec, err := l.e.lease.Release(ctx, l.term)
		if err == nil || errors.Is(err, ErrNotHolder) {
			return rec, err
		}
		l.e.log.V(1).Info("lease release failed; retrying", "term", l.term.Number, "error", err.Error(), "after", pause)
		if !sleep(ctx, pause) {
			return rec, err
		}
		pause = min(2*pause+10*time.Millisecond, l.e.cfg.RetryPeriod)
	}
}

func (l *leaseTerm) renewLoop() {
	defer l.loops.Done()
	defer close(l.renewDone)
	e := l.e
	watchdog := time.AfterFunc(l.deadline.Sub(e.clock.Now()), func() { l.cancel(ErrDeadlinePassed) })
	defer watchdog.Stop()
	tick := time.NewTicker(e.cfg.RetryPeriod)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-l.ctx.Done():
			l.ended(context.Cause(l.ctx))
			return
		case <-tick.C:
		}
		left := l.deadline.Sub(e.clock.Now())
		if left <= 0 {
			l.cancel(ErrDeadlinePassed)
			continue
		}
		sent := e.clock.Now()
		rec, err := l.renew(sent, min(left, e.cfg.OpTimeout))
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
			e.observeRenewal(rec)
			if failures > 0 {
				e.log.Info("lease renewed late", "holder", l.term.Holder, "term", l.term.Number, "failedAttempts", failures, "latency", latency)
				failures = 0
			}
		case errors.Is(err, ErrClockJump):
			// Seen from here the database clock leapt ahead: by its reckoning
			// the lease may expire before this replica's deadline.
			if rec.Now.Sub(rec.RenewedAt)-l.sinceRenewal(e.clock.Now()) <= e.skewMargin() {
				failures++ // the statement was slow, the clock did not jump: renew again
				continue
			}
			l.cancel(err)
		case errors.Is(err, ErrNotHolder):
			e.observe(rec)
			l.cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
		default:
			failures++
			e.log.V(1).Info("renew failed", "holder", l.term.Holder, "term", l.term.Number, "error", err.Error())
		}
	}
}

// renew runs one renew statement, asking the database to refuse it when
// its clock moved on since the last renewal by more than this replica's
// clock did (plus the skew margin): see Lease.Renew.
func (l *leaseTerm) renew(sent time.Time, timeout time.Duration) (Record, error) {
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	defer cancel()
	// At least 1ms: a zero bound would switch the check off.
	return l.e.lease.Renew(ctx, l.term, l.e.cfg.LeaseDuration, max(l.sinceRenewal(sent)+l.e.skewMargin(), time.Millisecond))
}

// sinceRenewal is how long before now the last successful renew was sent.
func (l *leaseTerm) sinceRenewal(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Sub(l.renewed)
}

// ended logs why the term ended and, when it ended on this replica's own
// account (deadline, clock jump), ends it in the epoch too, best effort:
// from then on the term's own stragglers are fenced, and the term log says
// why. A Resign does both itself.
func (l *leaseTerm) ended(cause error) {
	if errors.Is(cause, ErrResigned) {
		return
	}
	l.e.log.Info("lease lost", "holder", l.term.Holder, "term", l.term.Number, "reason", cause.Error())
	if errors.Is(cause, ErrLeaseLost) {
		return // someone else moved the lease: the epoch has moved on or ended it
	}
	ctx, cancel := context.WithTimeout(WithEndReason(context.Background(), endReasonOf(cause)), l.e.cfg.OpTimeout)
	defer cancel()
	if err := l.e.lease.Epochs().End(ctx, l.term); err != nil {
		l.e.log.V(1).Info("could not end the lost term in the epoch; the next term supersedes it", "term", l.term.Number, "error", err.Error())
	}
}
