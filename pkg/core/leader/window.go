package leader

import "time"

// The lock window follows the lock checks' round trip, as a retransmission
// timeout follows a connection's: a fixed window that a saturated database
// outgrows turns every term lease-only (or ends it), exactly when a
// failover would hurt most.
//
//   - A check slower than window/growAbove doubles the window until it
//     fits, up to Config.maxLockWindow; so do late checks, by how late. A lock-fenced term writes the larger window to
//     its row first (conditional on holder and term) and counts on it only
//     once that committed: from then on a follower's takeover, conditional
//     on the window it waited for, waits the larger one. A lease-only term
//     grows it locally and is lock-fenced again, on it, once a check fits.
//   - shrinkAfter checks in a row faster than window/shrinkBelow halve it,
//     down to Config.LockWindow: the term counts on the smaller window
//     first, then writes it (a row that still says the larger one only
//     makes followers wait longer). Slowly (30 s a halving at the default
//     check period): a database that stalled once stalls again while its
//     load lasts, seen every 3 to 20 s in the ZooKeeper bench, where a
//     window shrunk back within seconds met the next stall and ended the
//     term.
//
// The elector keeps the window its last term ended with, so that the next
// term on a slow database starts on it.
const (
	growAbove   = 6
	shrinkBelow = 12
	shrinkAfter = 375
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

// windowTuner is the lock loop's record of how fast its checks were.
type windowTuner struct {
	cfg         Config
	shrinkAfter int // fast checks in a row that halve the window
	fast        int // checks in a row faster than window/shrinkBelow
}

// fits reports whether a check that took latency leaves room in window.
func fits(window, latency time.Duration) bool { return latency*growAbove <= window }

// next is the window a check that took latency asks for, on window: larger,
// smaller or the same.
func (t *windowTuner) next(window, latency time.Duration) time.Duration {
	switch {
	case !fits(window, latency):
		t.fast = 0
		return t.cfg.grown(window, latency)
	case latency*shrinkBelow < window && window > t.cfg.LockWindow:
		if t.fast++; t.fast >= t.shrinkAfter {
			t.fast = 0
			return max(window/2, t.cfg.LockWindow)
		}
	default:
		t.fast = 0
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
