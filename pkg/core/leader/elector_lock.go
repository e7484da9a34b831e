package leader

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// LockObserver, when the Observer also implements it, is told of every
// statement the session lock runs on its own connection (the lock's cost;
// the file lock of SQLite runs none).
type LockObserver interface {
	ObserveLockStatement()
}

func (e *LeaseElector) lockStatement() {
	if o, ok := e.observer.(LockObserver); ok {
		o.ObserveLockStatement()
	}
}

// FailoverPather is implemented by the Leadership of the SQL lease: the
// failover path of the term (PathLockFenced or PathLeaseOnly) and, for a
// lease-only term, why.
type FailoverPather interface {
	FailoverPath() (path, reason string)
}

// Reasons a term is lease-only (Record.PathReason).
const (
	noteFastFailoverOff = "fast failover is off"
	noteLockElsewhere   = "another candidate held the session lock"
)

// errDeferred: the lease is free, but another candidate holds the session
// lock and is about to take it; this candidate lets it, once.
var errDeferred = errors.New("lease is free: leaving it one retry period to the session lock's holder")

// candidacy is one Campaign's hold on the session lock: the lock session
// (nil while lease-only), whether it holds the lock and since when.
type candidacy struct {
	e      *LeaseElector
	lock   sessionLock
	held   bool
	gotAt  time.Time // local instant the lock call that got the lock returned
	note   string    // why this candidacy is lease-only right now
	passed bool      // a free lease was left once to the lock's holder
}

func (e *LeaseElector) newCandidacy() *candidacy {
	c := &candidacy{e: e}
	if !e.cfg.FastFailover {
		c.note = noteFastFailoverOff
	}
	return c
}

// ensure opens the lock session when the fast path is on and none is open.
func (c *candidacy) ensure(ctx context.Context) {
	if !c.e.cfg.FastFailover || c.lock != nil {
		return
	}
	if off := c.e.lockOff(); off != "" {
		c.note = off
		return
	}
	opCtx, cancel := context.WithTimeout(ctx, c.e.cfg.OpTimeout)
	defer cancel()
	l, err := c.e.openLock(opCtx, c.e.lease.db, c.e.cfg.Name, c.e.lockStatement)
	if err != nil {
		c.note = "no session lock: " + err.Error()
		c.e.log.V(1).Info("cannot open the session lock; campaigning lease-only", "error", err.Error())
		return
	}
	c.lock, c.held, c.note = l, false, ""
}

// drop closes the lock session; the next attempt opens a new one.
func (c *candidacy) drop(note string) {
	if c.lock != nil {
		_ = c.lock.close()
	}
	c.lock, c.held, c.note = nil, false, note
}

// broken closes the lock session for good: the lock does not exclude
// other sessions on this database.
func (c *candidacy) broken(err error) {
	c.e.disableLock(err)
	c.drop(c.e.lockOff())
}

// wait waits up to d for the lock (or simply d when there is no lock
// session or it is already held).
func (c *candidacy) wait(ctx context.Context, d time.Duration) error {
	if c.lock == nil || c.held {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
			return nil
		}
	}
	got, err := c.lock.acquire(ctx, d)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	switch {
	case errors.Is(err, errLockBroken):
		c.broken(err)
	case err != nil:
		c.drop("session lock: " + err.Error())
	case got:
		c.held, c.gotAt = true, c.e.clock.Now()
	}
	return nil
}

// acquisition checks the lock once more right before a term is taken
// and returns how the term is taken, and the start of that check (the
// start of the new term's lock window).
func (c *candidacy) acquisition(ctx context.Context) (acquisition, time.Time) {
	if c.lock == nil || !c.held {
		note := c.note
		if note == "" {
			note = noteLockElsewhere
		}
		return acquisition{note: note}, time.Time{}
	}
	start := c.e.clock.Now()
	opCtx, cancel := context.WithTimeout(ctx, c.e.cfg.OpTimeout)
	defer cancel()
	switch err := c.lock.check(opCtx); {
	case errors.Is(err, errLockBroken):
		c.broken(err)
		return acquisition{note: c.note}, time.Time{}
	case err != nil:
		c.drop("session lock: " + err.Error())
		return acquisition{note: c.note}, time.Time{}
	}
	return acquisition{lock: c.lock.info(), window: c.e.cfg.LockWindow}, start
}

// takeoverAt is the earliest local instant at which this candidate may
// take over the unexpired lease rec, and whether it may at all: it holds
// the lock, and rec is lock-fenced on the same server by another session.
func (c *candidacy) takeoverAt(rec Record) (time.Time, bool) {
	if c.lock == nil || !c.held || rec.Path != PathLockFenced {
		return time.Time{}, false
	}
	me := c.lock.info()
	if rec.lock.server != me.Server {
		return time.Time{}, false
	}
	if rec.lock.session == me.Session {
		// Two candidates in one server session: a pooler shares it.
		c.broken(fmt.Errorf("%w: this candidate got the lock in session %s, which the holder %s recorded as its own", errLockBroken, me.Session, rec.Holder))
		return time.Time{}, false
	}
	return c.gotAt.Add(c.lock.takeoverWait(max(c.e.cfg.LockWindow, rec.lock.window))), true
}

// handOff gives the lock to the term just won; the candidacy closes it no
// longer.
func (c *candidacy) handOff(acq acquisition) sessionLock {
	if acq.lock.Server == "" {
		return nil
	}
	l := c.lock
	c.lock, c.held = nil, false
	return l
}

func (c *candidacy) close() {
	if c.lock != nil {
		_ = c.lock.close()
		c.lock = nil
	}
}

// lockOff is why the fast path is off for this elector's life ("" while on).
func (e *LeaseElector) lockOff() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lockBroken
}

// disableLock turns the fast path off for this elector's life, with one
// warning.
func (e *LeaseElector) disableLock(err error) {
	e.mu.Lock()
	first := e.lockBroken == ""
	if first {
		e.lockBroken = "session lock unusable: " + err.Error()
	}
	e.mu.Unlock()
	if first {
		e.log.Info("WARNING: the session lock does not exclude other sessions on this database (a pooler in transaction mode or a proxy?); fast failover is off, a crashed leader is replaced when its lease expires",
			"reason", err.Error())
	}
}

// lockLoop checks the term's lock every LockCheckPeriod on the lock's own
// connection. The term may act only while less than LockWindow has passed
// since the start of the last successful check: past it, or at any error
// of the lock connection, the term ends. A lock that turns out not to
// exclude other sessions turns the term lease-only instead, if the row
// says so before the window ends. When the term is over the lock is kept
// until the window ends (or Resign released the lease), so that on SQLite,
// where a successor takes over as soon as it gets the lock, it never does
// while this term may still act.
func (l *leaseTerm) lockLoop() {
	defer l.loops.Done()
	if !l.lock.windowed() {
		l.heldLockLoop()
		return
	}
	e := l.e
	stopBy := func() time.Duration { return l.lockDeadlineAt().Sub(e.clock.Now()) - l.stopMargin() }
	watchdog := time.AfterFunc(stopBy(), func() { l.cancel(ErrLockCheckDeadline) })
	defer watchdog.Stop()
	tick := time.NewTicker(e.cfg.LockCheckPeriod)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			l.releaseLock(l.lockDeadlineAt())
			return
		case <-tick.C:
		}
		start := e.clock.Now()
		left := stopBy()
		if left <= 0 {
			l.cancel(ErrLockCheckDeadline)
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, min(left, e.cfg.OpTimeout))
		err := l.lock.check(ctx)
		if errors.Is(err, errLockBroken) {
			err = l.unfence(ctx, err)
			if err == nil && watchdog.Stop() {
				cancel()
				l.closeLock()
				return
			}
		}
		cancel()
		switch {
		case err != nil:
			l.cancel(fmt.Errorf("%w: %w", ErrLockLost, err))
		case !watchdog.Stop():
			// The window ended while the check ran: the term is over.
		default:
			l.mu.Lock()
			l.lockDeadline = start.Add(e.cfg.LockWindow)
			l.mu.Unlock()
			watchdog.Reset(stopBy())
		}
	}
}

// unfence turns the term lease-only after the lock proved not to exclude
// (broken): the row first, so that no follower takes over early, then the
// term's path.
func (l *leaseTerm) unfence(ctx context.Context, broken error) error {
	l.e.disableLock(broken)
	note := l.e.lockOff()
	if err := l.e.lease.unfence(ctx, l.term, note); err != nil {
		return err
	}
	l.mu.Lock()
	l.path, l.reason, l.lockDeadline = PathLeaseOnly, note, time.Time{}
	l.mu.Unlock()
	l.e.log.Info("term turned lease-only", "holder", l.term.Holder, "term", l.term.Number, "reason", note)
	return nil
}

// stopMargin is how long before the end of its lock window (ValidUntil)
// the term context ends: the runtime gives the leader components until
// ValidUntil to return, and fail-stops them then.
func (l *leaseTerm) stopMargin() time.Duration { return l.e.cfg.LockCheckPeriod / 2 }

// heldLockLoop is lockLoop for a lock that only its holder frees (the
// flock of SQLite): the term has no lock window; a failed check (the side
// file replaced) ends it. Once over, the lock is kept until Resign released
// the lease or the term's ValidUntil passed, when the runtime has stopped
// (or fail-stopped) its leader components.
func (l *leaseTerm) heldLockLoop() {
	tick := time.NewTicker(l.e.cfg.LockCheckPeriod)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			l.releaseLock(l.ValidUntil())
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(l.ctx, l.e.cfg.OpTimeout)
		err := l.lock.check(ctx)
		if errors.Is(err, errLockBroken) {
			if err = l.unfence(ctx, err); err == nil {
				cancel()
				l.closeLock()
				return
			}
		}
		cancel()
		if err != nil {
			l.cancel(fmt.Errorf("%w: %w", ErrLockLost, err))
		}
	}
}

// releaseLock closes the lock of a term that is over, at until or once
// Resign released the lease, whichever is first.
func (l *leaseTerm) releaseLock(until time.Time) {
	if wait := until.Sub(l.e.clock.Now()); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-l.handover:
		}
		t.Stop()
	}
	l.closeLock()
}

func (l *leaseTerm) closeLock() {
	l.mu.Lock()
	lock := l.lock
	l.lock = nil
	l.mu.Unlock()
	if lock != nil {
		_ = lock.close()
	}
}

// lockDeadlineAt is the end of the term's lock window; the zero time for a
// lease-only term.
func (l *leaseTerm) lockDeadlineAt() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lockDeadline
}

// FailoverPath is the term's failover path and, when lease-only, why.
func (l *leaseTerm) FailoverPath() (string, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.path, l.reason
}
