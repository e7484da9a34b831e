package leader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
)

// TestLock exposes a session lock to the external test package.
type TestLock struct{ l sessionLock }

// OpenTestLock opens the session lock of election on db's database.
func OpenTestLock(ctx context.Context, db *gorm.DB, election string) (*TestLock, error) {
	l, err := openSessionLock(ctx, db, election, nil)
	if err != nil {
		return nil, err
	}
	return &TestLock{l}, nil
}

func (t *TestLock) Acquire(ctx context.Context, wait time.Duration) (bool, error) {
	return t.l.acquire(ctx, wait)
}
func (t *TestLock) Check(ctx context.Context) error                 { return t.l.check(ctx) }
func (t *TestLock) Server() string                                  { return t.l.info().Server }
func (t *TestLock) Session() string                                 { return t.l.info().Session }
func (t *TestLock) Close() error                                    { return t.l.close() }
func (t *TestLock) TakeoverWait(window time.Duration) time.Duration { return t.l.takeoverWait(window) }

// HoldLockWindowAtMost makes n fast lock checks in a row the longest that
// e's terms hold a grown lock window, instead of the default's 30 s worth.
func HoldLockWindowAtMost(e *LeaseElector, n int) { e.holdMost = n }

// ErrLockBroken is errLockBroken, for specs.
var ErrLockBroken = errLockBroken

// LockOff is why the session lock is off for e's life ("" while on).
func (e *LeaseElector) LockOff() string { return e.lockOff() }

// BreakLockSession makes the session locks e opens from now on report, once
// broken is closed, that the server session behind the lock connection
// changed (as behind a transaction-mode pooler).
func BreakLockSession(e *LeaseElector, broken <-chan struct{}) {
	open := e.openLock
	e.openLock = func(ctx context.Context, db *gorm.DB, election string, counted func()) (sessionLock, error) {
		l, err := open(ctx, db, election, counted)
		if err != nil {
			return nil, err
		}
		return &brokenLock{sessionLock: l, broken: broken}, nil
	}
}

type brokenLock struct {
	sessionLock
	broken <-chan struct{}
}

func (b *brokenLock) check(ctx context.Context) error {
	select {
	case <-b.broken:
		return fmt.Errorf("%w: the session changed (test)", errLockBroken)
	default:
		return b.sessionLock.check(ctx)
	}
}

// LockCheckGate holds the lock checks of the electors it is installed in:
// while held, a check waits (until released, or until its context ends, as a
// slow server would make it wait) before it runs.
type LockCheckGate struct {
	mu      sync.Mutex
	release chan struct{} // nil while not held
	delay   time.Duration // every check waits this long first (Slow)
}

// Slow makes every check from now on wait d before it runs, as on a
// saturated server; Slow(0) ends that.
func (g *LockCheckGate) Slow(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delay = d
}

// Hold makes every check from now on wait.
func (g *LockCheckGate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release == nil {
		g.release = make(chan struct{})
	}
}

// Release lets the waiting checks run.
func (g *LockCheckGate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release != nil {
		close(g.release)
		g.release = nil
	}
}

// GateLockChecks installs g in the session locks e opens from now on.
func GateLockChecks(e *LeaseElector, g *LockCheckGate) {
	open := e.openLock
	e.openLock = func(ctx context.Context, db *gorm.DB, election string, counted func()) (sessionLock, error) {
		l, err := open(ctx, db, election, counted)
		if err != nil {
			return nil, err
		}
		return &gatedLock{sessionLock: l, gate: g}, nil
	}
}

type gatedLock struct {
	sessionLock
	gate *LockCheckGate
}

func (l *gatedLock) check(ctx context.Context) error {
	l.gate.mu.Lock()
	release, delay := l.gate.release, l.gate.delay
	l.gate.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%w: check: %w", ErrLockLost, context.Cause(ctx))
		}
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return fmt.Errorf("%w: check: %w", ErrLockLost, context.Cause(ctx))
		}
	}
	return l.sessionLock.check(ctx)
}

// WindowTuner is the lock loop's window tuner, for specs of its policy.
type WindowTuner struct{ t windowTuner }

// NewWindowTuner is the tuner a term of cfg starts with.
func NewWindowTuner(cfg Config) *WindowTuner {
	return &WindowTuner{newWindowTuner(cfg, windowTuner{}, 0)}
}

// Next is the window a lock-fenced term on window moves to after a check
// that took latency.
func (w *WindowTuner) Next(window, latency time.Duration) time.Duration {
	return w.t.next(window, latency)
}
