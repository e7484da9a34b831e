package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
		if !sleep(ctx, d) {
			return context.Cause(ctx)
		}
		return nil
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
	acq := acquisition{lock: c.lock.info()}
	if c.lock.windowed() {
		acq.window = c.e.lockWindow() // else none: only the holder's death frees the lock
	}
	return acq, start
}

// spentWindow turns a lock-fenced term just acquired lease-only when the
// acquisition took longer than a check period since the check before it,
// so that most of the lock window was spent before the term could act:
// the row first (conditional on the term), then the record. The term's
// lock loop makes it lock-fenced again at its first successful check. It
// fails when the row could not be written; the term must not be led then.
func (e *LeaseElector) spentWindow(ctx context.Context, rec Record, lock sessionLock, checked time.Time) (Record, time.Time, error) {
	if lock == nil || !lock.windowed() || e.clock.Now().Sub(checked) <= e.cfg.LockCheckPeriod {
		return rec, checked, nil
	}
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	if err := e.lease.unfence(opCtx, rec.TermOf(), noteLockLate); err != nil {
		return rec, checked, err
	}
	rec.Path, rec.PathReason, rec.lock = PathLeaseOnly, noteLockLate, lockRow{}
	return rec, time.Time{}, nil
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

// Where a lock-fenced term stands (leaseTerm.lockState).
const (
	// lockFenced: the row says lock-fenced; the term may act until its
	// lock deadline (the start of its last successful check plus D).
	lockFenced = iota
	// lockUnfencing: no check succeeded for 1.5P; the row is being turned
	// lease-only, and the lock deadline still binds.
	lockUnfencing
	// lockLeaseOnly: the row says lease-only; only the lease binds.
	lockLeaseOnly
)

// noteLockLate is the row's reason while a term is lease-only because its
// lock checks ran late.
const noteLockLate = "lock check late: lease-only until a check succeeds"

// lockCheck is the outcome of one check of the lock, and when it was sent.
type lockCheck struct {
	start time.Time
	err   error
}

// rowWrite is the outcome of one write of the term's lock columns.
type rowWrite struct {
	fence  bool          // the row was being made lock-fenced on window (else lease-only)
	window time.Duration // the window written
	err    error
}

// lockLoop checks the term's lock every LockCheckPeriod (P) on the lock's
// own connection, one check at a time, and owns every transition of the
// term's failover path and lock window W (see the package doc and
// window.go):
//
//   - a successful check started at s lets a lock-fenced term act until
//     s+W (its lock deadline);
//   - a check slower than W/6 grows W (in the row first), the tuner's
//     hold of fast ones in a row shrink it (in the term first);
//   - when no check has succeeded for lateAfter(W), the term writes its row
//     lease-only (conditional on holder and term); once that committed,
//     no follower takes over before the lease expires, so the term goes on
//     under its lease, and the next check that fits its window makes it
//     lock-fenced again (the deadline first, then the row);
//   - at P/2 before the lock deadline, with the row not yet lease-only, the
//     term ends (ErrLockCheckDeadline), which leaves the leader components
//     P/2 to return before ValidUntil;
//   - a failed check ends a lock-fenced term at once (ErrLockLost); a
//     lease-only term closes its lock and goes on under its lease;
//   - a lock that proves not to exclude other sessions (errLockBroken)
//     turns the term lease-only for good, and fast failover off for the
//     elector's life.
//
// When the term is over the lock is kept until the lock deadline (or until
// Resign released the lease).
func (l *leaseTerm) lockLoop() {
	defer l.loops.Done()
	if !l.lock.windowed() {
		l.heldLockLoop()
		return
	}
	e := l.e
	period := e.cfg.LockCheckPeriod
	var (
		inflight          sync.WaitGroup
		checks            = make(chan lockCheck, 1)
		writes            = make(chan rowWrite, 1)
		checking, writing bool
		pending           bool  // a check fell due while one was in flight
		broken            error // set once the lock proved not to exclude
		tuner             = e.nextTuner()
		// slow is the slowest check (or, late, the least it took) seen
		// while the window could not change: it sizes the window once the
		// term is lease-only.
		slow time.Duration
		// lastGood is the start of the last successful check (zero while
		// the term started lease-only).
		lastGood = l.lockDeadlineAt().Add(-l.windowOf())
		late     = time.NewTimer(time.Hour)
		hard     = time.NewTimer(time.Hour)
		// The first check falls due P after the one before the acquisition
		// (at once if the acquisition took that long), then every P.
		next = time.NewTimer(max(lastGood.Add(period).Sub(e.clock.Now()), 0))
	)
	defer next.Stop()
	defer late.Stop()
	defer hard.Stop()
	// arm sets both timers from the last good check and the lock deadline.
	arm := func() {
		late.Reset(lastGood.Add(e.cfg.lateAfter(l.windowOf())).Sub(e.clock.Now()))
		hard.Reset(l.lockDeadlineAt().Add(-period / 2).Sub(e.clock.Now()))
	}
	// write writes the term's lock columns, bounded by the hard deadline:
	// lease-only (note says why), or lock-fenced on window.
	write := func(fence bool, note string, window time.Duration) {
		writing = true
		ctx, cancel := context.WithDeadline(l.ctx, l.lockDeadlineAt().Add(-period/2))
		var info lockInfo
		if lock := l.lockOf(); lock != nil {
			info = lock.info()
		}
		inflight.Go(func() {
			defer cancel()
			var err error
			if fence {
				err = e.lease.refence(ctx, l.term, info, window)
			} else {
				err = e.lease.unfence(ctx, l.term, note)
			}
			writes <- rowWrite{fence: fence, window: window, err: err}
		})
	}
	// unfenceIfLate turns a lock-fenced term lease-only once its checks are
	// late, unless a write is in flight (its end calls this again).
	unfenceIfLate := func() {
		if l.lockStateOf() != lockFenced || writing {
			return
		}
		now := e.clock.Now()
		if now.Before(lastGood.Add(e.cfg.lateAfter(l.windowOf()))) || !now.Before(l.lockDeadlineAt().Add(-period/2)) {
			return // not late yet, or too late: the hard deadline decides
		}
		slow = max(slow, now.Sub(lastGood))
		l.setLockState(lockUnfencing)
		write(false, noteLockLate, 0)
	}
	// check sends one check of the lock, unless it is gone or broken.
	check := func() {
		lock := l.lockOf()
		if broken != nil || lock == nil {
			return
		}
		checking = true
		start := e.clock.Now()
		// Not derived from the term's context: a statement cancelled on
		// the lock connection costs the connection, and so the lock, which
		// would wake a follower before Resign released the lease.
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.OpTimeout)
		inflight.Go(func() {
			defer cancel()
			checks <- lockCheck{start: start, err: lock.check(ctx)}
		})
	}
	arm()
	for l.ctx.Err() == nil {
		select {
		case <-l.ctx.Done():
		case <-next.C:
			next.Reset(period)
			if checking {
				pending = true
				continue
			}
			check()
		case c := <-checks:
			checking = false
			state := l.lockStateOf()
			latency := e.clock.Now().Sub(c.start)
			switch {
			case l.ctx.Err() != nil:
			case errors.Is(c.err, errLockBroken):
				broken = c.err
				e.disableLock(c.err)
				if state == lockLeaseOnly {
					l.leaseOnly(e.lockOff())
					l.closeLock()
				} else if !writing {
					write(false, e.lockOff(), 0)
				}
			case c.err != nil && state == lockLeaseOnly:
				e.log.Info("session lock lost while the term is lease-only; it goes on under its lease",
					"holder", l.term.Holder, "term", l.term.Number, "reason", c.err.Error())
				l.closeLock()
			case c.err != nil:
				l.cancel(fmt.Errorf("%w: %w", ErrLockLost, c.err))
			case state == lockLeaseOnly:
				w := l.windowOf()
				if !fits(w, latency) {
					// Too slow for this window: a larger one for the next.
					l.setWindow(tuner.grow(w, latency))
				} else if !writing {
					// Lock-fenced again on w: the deadline before the row.
					lastGood = c.start
					l.fenced(c.start.Add(w))
					arm()
					write(true, "", w)
				}
			default:
				if c.start.After(lastGood) {
					lastGood = c.start
				}
				w := l.windowOf()
				if d := c.start.Add(w); d.After(l.lockDeadlineAt()) {
					l.extend(d)
				}
				arm()
				if state != lockFenced || writing {
					slow = max(slow, latency)
					break
				}
				slow = 0
				switch nw := tuner.next(w, latency); {
				case nw > w:
					// Counted on once the row says so (see writes).
					write(true, "", nw)
				case nw < w:
					// Counted on at once: the row only makes followers wait.
					l.shrink(nw, lastGood.Add(nw))
					arm()
					write(true, "", nw)
				}
			}
			if pending && l.ctx.Err() == nil {
				pending = false
				check()
			}
		case w := <-writes:
			writing = false
			state := l.lockStateOf()
			switch {
			case l.ctx.Err() != nil:
			case errors.Is(w.err, ErrNotHolder):
				l.cancel(fmt.Errorf("%w: %w", ErrLeaseLost, w.err))
			case w.err != nil && w.fence:
				// The row keeps what it had: a lease-only row, or a larger
				// window, is stricter than the term, harmless.
				e.log.V(1).Info("could not write the term's lock window", "term", l.term.Number, "window", w.window, "error", w.err.Error())
			case w.err != nil:
				// Not committed in time (or not known to be): the hard
				// deadline decides. A late commit only makes followers wait.
				l.setLockState(lockFenced)
				if broken != nil && e.clock.Now().Before(l.lockDeadlineAt().Add(-period/2)) {
					write(false, e.lockOff(), 0)
				}
			case w.fence && leaseOnlyPath(l):
				l.setPath(PathLockFenced, "")
				e.log.Info("term lock-fenced again", "holder", l.term.Holder, "term", l.term.Number, "window", w.window)
			case w.fence && w.window > l.windowOf() && state == lockFenced:
				l.setWindow(w.window)
				if d := lastGood.Add(w.window); d.After(l.lockDeadlineAt()) {
					l.extend(d)
				}
				arm()
				e.log.V(1).Info("lock window grown: lock checks are slow", "term", l.term.Number, "window", w.window)
			case w.fence:
			case broken != nil:
				l.leaseOnly(e.lockOff())
				l.closeLock()
				e.log.Info("term turned lease-only", "holder", l.term.Holder, "term", l.term.Number, "reason", e.lockOff())
			default:
				l.leaseOnly(noteLockLate)
				l.setWindow(tuner.grow(l.windowOf(), slow))
				slow = 0
				e.log.Info("term turned lease-only", "holder", l.term.Holder, "term", l.term.Number, "reason", noteLockLate)
			}
			unfenceIfLate()
		case <-late.C:
			unfenceIfLate()
		case <-hard.C:
			if l.lockStateOf() != lockLeaseOnly {
				l.cancel(ErrLockCheckDeadline)
			}
		}
	}
	inflight.Wait()
	e.rememberTuner(tuner)
	l.releaseLock(l.lockDeadlineAt())
}

// The lock state of a term, under its mutex; lockDeadline is zero exactly
// when the term is lease-only.

func (l *leaseTerm) lockOf() sessionLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lock
}

func (l *leaseTerm) lockStateOf() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lockState
}

func (l *leaseTerm) setLockState(s int) {
	l.mu.Lock()
	l.lockState = s
	l.mu.Unlock()
}

func (l *leaseTerm) extend(deadline time.Time) {
	l.mu.Lock()
	l.lockDeadline = deadline
	l.mu.Unlock()
}

// fenced makes a lease-only term lock-fenced again, acting until deadline.
func (l *leaseTerm) fenced(deadline time.Time) {
	l.mu.Lock()
	l.lockState, l.lockDeadline = lockFenced, deadline
	l.mu.Unlock()
}

// leaseOnly records that the term's row is lease-only, for reason.
func (l *leaseTerm) leaseOnly(reason string) {
	l.mu.Lock()
	l.lockState, l.lockDeadline, l.path, l.reason = lockLeaseOnly, time.Time{}, PathLeaseOnly, reason
	l.mu.Unlock()
}

// leaseOnlyPath reports whether the term's path still says lease-only.
func leaseOnlyPath(l *leaseTerm) bool {
	p, _ := l.FailoverPath()
	return p == PathLeaseOnly
}

// setWindow sets the term's lock window, and the elector's next term's.
func (l *leaseTerm) setWindow(w time.Duration) {
	l.mu.Lock()
	l.window = w
	l.mu.Unlock()
	l.e.rememberWindow(w)
}

// shrink makes the term count on the smaller window w, acting until
// deadline at the latest.
func (l *leaseTerm) shrink(w time.Duration, deadline time.Time) {
	l.setWindow(w)
	l.mu.Lock()
	if deadline.Before(l.lockDeadline) {
		l.lockDeadline = deadline
	}
	l.mu.Unlock()
}

// windowOf is the lock window the term counts on.
func (l *leaseTerm) windowOf() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.window
}

func (l *leaseTerm) setPath(path, reason string) {
	l.mu.Lock()
	l.path, l.reason = path, reason
	l.mu.Unlock()
}

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
			if err = l.unfenceForGood(ctx, err); err == nil {
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

// unfenceForGood turns the term lease-only after its lock proved not to
// exclude other sessions (broken): the row first, so that no follower
// takes over early, then the term's path; fast failover stays off for the
// elector's life.
func (l *leaseTerm) unfenceForGood(ctx context.Context, broken error) error {
	l.e.disableLock(broken)
	note := l.e.lockOff()
	if err := l.e.lease.unfence(ctx, l.term, note); err != nil {
		return err
	}
	l.leaseOnly(note)
	l.e.log.Info("term turned lease-only", "holder", l.term.Holder, "term", l.term.Number, "reason", note)
	return nil
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
