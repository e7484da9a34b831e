package leader

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Trouble keeps a backend's campaign trouble loud but short: one error line
// when the cause of failed attempts changes (or every TroubleRepeat while it
// lasts), one line when attempts work again, and the current cause for
// status pages. Every backend's campaign loop uses one. It is safe for
// concurrent use.
type Trouble struct {
	log logr.Logger
	now func() time.Time

	mu       sync.Mutex
	cause    string
	since    time.Time
	logged   time.Time
	attempts int
}

// TroubleRepeat is how often a lasting cause is logged again.
const TroubleRepeat = time.Minute

// NewTrouble returns the trouble log of a campaign loop logging to log.
func NewTrouble(log logr.Logger) *Trouble { return &Trouble{log: log, now: time.Now} }

// Fail records a failed attempt (not one lost to a live holder) and logs it
// when its cause is new or has lasted another TroubleRepeat.
func (t *Trouble) Fail(err error) {
	now := t.now()
	t.mu.Lock()
	t.attempts++
	fresh := t.cause != err.Error()
	if fresh {
		t.cause, t.since = err.Error(), now
	}
	due := fresh || now.Sub(t.logged) >= TroubleRepeat
	if due {
		t.logged = now
	}
	attempts, since := t.attempts, t.since
	t.mu.Unlock()
	if due {
		t.log.Error(err, "cannot take part in the election: campaign attempts fail; retrying",
			"failedAttempts", attempts, "failingFor", now.Sub(since).Round(time.Millisecond))
	}
}

// Over records a working attempt, logging once that attempts work again.
func (t *Trouble) Over() {
	t.mu.Lock()
	attempts, had := t.attempts, t.cause != ""
	t.cause, t.attempts = "", 0
	t.mu.Unlock()
	if had {
		t.log.Info("election attempts work again", "failedAttempts", attempts)
	}
}

// Cause is the cause of the failing attempts, "" while they work.
func (t *Trouble) Cause() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cause
}

// LastError is the cause of the failing acquire attempts, "" while they work.
func (e *LeaseElector) LastError() string { return e.trouble.Cause() }

// checkPlausible warns once per lease whose expiry lies further ahead than
// any lease duration allows: a row left by a dead holder with a far-future
// expiry, which only `leader release --force` clears.
func (e *LeaseElector) checkPlausible(rec Record) {
	if rec.Remaining() <= 2*e.cfg.LeaseDuration {
		return
	}
	key := rec.Holder + "@" + rec.ExpiresAt.String()
	e.mu.Lock()
	seen := e.badLease == key
	e.badLease = key
	e.mu.Unlock()
	if !seen {
		e.log.Info("WARNING: the lease expires implausibly far ahead; if its holder is gone, clear it with `dubbo-admin leader release --force`",
			"holder", rec.Holder, "term", rec.Term, "expires", rec.ExpiresAt.Format(time.RFC3339Nano),
			"remaining", rec.Remaining().Round(time.Second), "leaseDuration", e.cfg.LeaseDuration)
	}
}
