package leader

import (
	"cmp"
	"time"
)

// The lock window follows the lock checks' round trip, as a retransmission
// timeout follows a connection's: a fixed window that a saturated database
// outgrows turns every term lease-only (or ends it), exactly when a
// failover would hurt most. What a grown window costs is a crash's: the
// follower waits the larger window before it takes over.
//
//   - A check slower than window/growAbove doubles the window until it
//     fits, up to Config.maxLockWindow; so do late checks, by how late. A
//     lock-fenced term writes the larger window to its row first
//     (conditional on holder and term) and counts on it only once that
//     committed: from then on a follower's takeover, conditional on the
//     window it waited for, waits the larger one. A lease-only term grows
//     it locally and is lock-fenced again, on it, once a check fits.
//   - Once hold checks in a row were faster than window/shrinkBelow, the
//     window comes down in one step to the smallest one (doubling from
//     Config.LockWindow) that their slowest fits with room; the term
//     counts on it first, then writes it (a row that still says the larger
//     one only makes followers wait longer).
//   - hold is holdFirst (a second at the default check period) after an
//     isolated slow check, which is what a loaded machine's scheduler
//     gives now and then, and doubles with every growth, up to holdMost
//     (30 s): a database that stalls while its load lasts stalls again, as
//     the ZooKeeper bench saw every 3 to 20 s, and a window shrunk before
//     the next stall ends the term there. holdMost checks in a row at the
//     configured window forget the recurrence.
//
// The elector keeps the window and hold its last term ended with, so that
// the next term on a slow database starts on them.
const (
	growAbove   = 6
	shrinkBelow = 12
	holdFirst   = 12
	holdMost    = 375
)

// maxLockWindow is the largest lock window a term grows to: eight times
// the configured one, and at most half the renew deadline, so that a
// lock-fenced term always has room to turn lease-only before its lease
// binds.
func (c Config) maxLockWindow() time.Duration {
	return max(c.LockWindow, min(8*c.LockWindow, c.RenewDeadline/2))
}

// grown is the smallest window, doubling from window, that fits a check
// of latency, up to maxLockWindow.
func (c Config) grown(window, latency time.Duration) time.Duration {
	for !fits(window, latency) && window < c.maxLockWindow() {
		window = min(2*window, c.maxLockWindow())
	}
	return window
}

// fits reports whether a check that took latency leaves room in window.
func fits(window, latency time.Duration) bool { return latency*growAbove <= window }

// windowTuner is the lock loop's record of how fast its checks were.
type windowTuner struct {
	cfg      Config
	holdMost int           // the longest hold (a seam for specs)
	hold     int           // fast checks in a row that bring a grown window down
	recent   bool          // a growth not yet forgotten: the next one doubles hold
	fast     int           // checks in a row faster than window/shrinkBelow
	slowest  time.Duration // the slowest of those
	quiet    int           // checks in a row at the configured window
}

// newWindowTuner is the tuner of a term; last is the one the elector's
// previous term ended with (zero: none).
func newWindowTuner(cfg Config, last windowTuner, most int) windowTuner {
	most = cmp.Or(most, holdMost)
	return windowTuner{cfg: cfg, holdMost: most, hold: min(cmp.Or(last.hold, holdFirst), most), recent: last.recent}
}

// grow is the window a check that took latency asks for on window, which
// it does not fit. A growth soon after another doubles the hold.
func (t *windowTuner) grow(window, latency time.Duration) time.Duration {
	if t.recent {
		t.hold = min(2*t.hold, t.holdMost)
	}
	t.recent, t.fast, t.slowest, t.quiet = true, 0, 0, 0
	return t.cfg.grown(window, latency)
}

// next is the window a check that took latency asks for, on window: larger,
// smaller or the same.
func (t *windowTuner) next(window, latency time.Duration) time.Duration {
	switch {
	case !fits(window, latency):
		return t.grow(window, latency)
	case window <= t.cfg.LockWindow:
		if !t.recent {
			break
		}
		if t.quiet++; t.quiet >= t.holdMost {
			t.recent, t.hold, t.quiet = false, min(holdFirst, t.holdMost), 0
		}
	case latency*shrinkBelow < window:
		t.slowest = max(t.slowest, latency)
		if t.fast++; t.fast >= t.hold {
			// Room: the slowest check fits twice over.
			target := t.cfg.grown(t.cfg.LockWindow, t.slowest*shrinkBelow/growAbove)
			t.fast, t.slowest = 0, 0
			return min(target, window)
		}
	default:
		t.fast, t.slowest = 0, 0
	}
	return window
}

// lateAfter is how long after the start of its last successful check a
// lock-fenced term with window starts turning lease-only: one and a half
// check periods, or two fifths of the window once it grew. A check then
// takes up to a sixth of the window, and the next one, sent when it
// returned, succeeds within two sixths of the last good start; the rest,
// up to the hard deadline, is the lease-only write's.
func (c Config) lateAfter(window time.Duration) time.Duration {
	return max(3*c.LockCheckPeriod/2, 2*window/5)
}

// rememberTuner makes t the tuner state the elector's next term starts on.
func (e *LeaseElector) rememberTuner(t windowTuner) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tuner = t
}

// nextTuner is the tuner the elector's next term starts with.
func (e *LeaseElector) nextTuner() windowTuner {
	e.mu.Lock()
	defer e.mu.Unlock()
	return newWindowTuner(e.cfg, e.tuner, e.holdMost)
}

// rememberWindow makes w the window the elector's next term starts on.
func (e *LeaseElector) rememberWindow(w time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.window = w
}

// lockWindow is the window the elector's next term starts on.
func (e *LeaseElector) lockWindow() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.window == 0 {
		return e.cfg.LockWindow
	}
	return e.window
}
