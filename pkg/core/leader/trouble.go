package leader

import (
	"time"
)

// troubleLog keeps campaign trouble loud but short: one error line when the
// cause of failed attempts changes (or every troubleRepeat while it lasts),
// one line when attempts work again, and one warning per implausible lease.
type troubleLog struct {
	cause    string
	since    time.Time
	logged   time.Time
	attempts int
	badLease string // holder and expiry of the last implausible lease warned about
}

// troubleRepeat is how often a lasting cause is logged again.
const troubleRepeat = time.Minute

// troubleAt records a failed attempt (not ErrHeld) and logs it when its cause
// is new or has lasted another troubleRepeat.
func (e *LeaseElector) troubleAt(err error) {
	now := e.clock.Now()
	e.mu.Lock()
	t := &e.trouble
	t.attempts++
	fresh := t.cause != err.Error()
	if fresh {
		t.cause, t.since = err.Error(), now
	}
	due := fresh || now.Sub(t.logged) >= troubleRepeat
	if due {
		t.logged = now
	}
	attempts, since := t.attempts, t.since
	e.mu.Unlock()
	if due {
		e.log.Error(err, "cannot take part in the election: acquire attempts fail; retrying",
			"failedAttempts", attempts, "failingFor", now.Sub(since).Round(time.Millisecond))
	}
}

// troubleOver logs once that attempts work again.
func (e *LeaseElector) troubleOver() {
	e.mu.Lock()
	t := &e.trouble
	attempts, had := t.attempts, t.cause != ""
	t.cause, t.attempts = "", 0
	e.mu.Unlock()
	if had {
		e.log.Info("election attempts work again", "failedAttempts", attempts)
	}
}

// LastError is the cause of the failing acquire attempts, "" while they work.
func (e *LeaseElector) LastError() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.trouble.cause
}

// checkPlausible warns once per lease whose expiry lies further ahead than
// any lease duration allows: a row left by a dead holder with a far-future
// expiry, which only `leader release --force` clears.
func (e *LeaseElector) checkPlausible(rec Record) {
	if rec.Remaining() <= 2*e.cfg.LeaseDuration {
		return
	}
	key := rec.Holder + "@" + rec.ExpiresAt.String()
	e.mu.Lock()
	seen := e.trouble.badLease == key
	e.trouble.badLease = key
	e.mu.Unlock()
	if !seen {
		e.log.Info("WARNING: the lease expires implausibly far ahead; if its holder is gone, clear it with `dubbo-admin leader release --force`",
			"holder", rec.Holder, "term", rec.Term, "expires", rec.ExpiresAt.Format(time.RFC3339Nano),
			"remaining", rec.Remaining().Round(time.Second), "leaseDuration", e.cfg.LeaseDuration)
	}
}
