package leader

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("invalid leader election config")

// MaxNameLength bounds an election name, in characters.
const MaxNameLength = 128

// Config holds the election name and its timings. All durations have
// millisecond resolution, like the lease columns.
type Config struct {
	// Name identifies the election: replicas with the same name elect one
	// leader. One row of leader_leases per name.
	Name string `json:"name" yaml:"name"`
	// LeaseDuration is how long, by the database clock, a lease stays valid
	// after its last acquire or renew. A crashed leader is replaced after
	// about this long.
	LeaseDuration time.Duration `json:"leaseDuration" yaml:"leaseDuration"`
	// RenewDeadline is how long, on the leader's monotonic clock from the
	// send time of its last successful renew, the leader keeps leading
	// without another success. It must be shorter than LeaseDuration: the
	// gap is the margin for clock-rate skew and in-flight statements.
	RenewDeadline time.Duration `json:"renewDeadline" yaml:"renewDeadline"`
	// RetryPeriod is the leader's renew interval and the followers' poll
	// interval (followers add jitter).
	RetryPeriod time.Duration `json:"retryPeriod" yaml:"retryPeriod"`
	// JitterFactor spreads follower polls over [RetryPeriod, RetryPeriod*(1+JitterFactor)).
	JitterFactor float64 `json:"jitterFactor" yaml:"jitterFactor"`
	// OpTimeout bounds every statement; the leader also never waits past its
	// deadline.
	OpTimeout time.Duration `json:"opTimeout" yaml:"opTimeout"`
	// FastFailover turns on the session-lock path (see the package doc):
	// a follower takes over from a crashed leader about LockWindow after
	// the crash instead of a lease duration, and a released lease wakes a
	// follower at once. Off, every term is lease-only.
	FastFailover bool `json:"fastFailover" yaml:"fastFailover"`
	// LockWindow (D) is how long, on the leader's monotonic clock from the
	// start of its last successful lock check, a lock-fenced leader keeps
	// leading without another; a follower that got the lock waits
	// D*(1+10%)+5ms before it takes over. It is the smallest window: while
	// lock checks are slower than D/6 the leader grows its window (up to
	// 8*D, at most RenewDeadline/2) and records it in the lease row.
	LockWindow time.Duration `json:"lockWindow" yaml:"lockWindow"`
	// LockCheckPeriod (P) is how often the leader checks its lock; at most
	// LockWindow/3.
	LockCheckPeriod time.Duration `json:"lockCheckPeriod" yaml:"lockCheckPeriod"`
}

// DefaultName is the election of Admin's data-source components.
const DefaultName = "dubbo-admin"

// DefaultConfig returns the timings Admin ships with: a crashed leader is
// replaced in about 10 s (a lease duration) and a released lease is taken
// in about 1 s; with FastFailover, about 350 ms and at once.
func DefaultConfig() Config {
	return Config{
		Name:          DefaultName,
		LeaseDuration: 10 * time.Second,
		RenewDeadline: 7 * time.Second,
		RetryPeriod:   time.Second,
		JitterFactor:  0.2,
		OpTimeout:     time.Second,

		FastFailover:    DefaultFastFailover,
		LockWindow:      300 * time.Millisecond,
		LockCheckPeriod: 80 * time.Millisecond,
	}
}

// DefaultFastFailover is whether DefaultConfig turns the session-lock path
// on. It is safe on a saturated database too: the lock window grows with
// the lock checks' round trip (window.go) instead of ending terms whose
// checks run late, and a term whose checks outgrow even the largest window
// goes on lease-only. Turn it off (election.fastFailover: false) behind
// anything that breaks the lock's exclusion and is not detected (the
// package doc lists them).
const DefaultFastFailover = true

// Validate checks every field and the relation
// LeaseDuration > RenewDeadline > RetryPeriod*(1+JitterFactor) + OpTimeout.
// Its errors name the field and the rule that is broken.
func (c Config) Validate() error {
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if err := checkMillis("", field{"leaseDuration", c.LeaseDuration}, field{"renewDeadline", c.RenewDeadline},
		field{"retryPeriod", c.RetryPeriod}, field{"opTimeout", c.OpTimeout}); err != nil {
		return err
	}
	if c.JitterFactor < 0 || c.JitterFactor > 1 || c.JitterFactor != c.JitterFactor {
		return fmt.Errorf("%w: jitterFactor is %v: must be between 0 and 1", ErrInvalidConfig, c.JitterFactor)
	}
	if c.LeaseDuration <= c.RenewDeadline {
		return fmt.Errorf("%w: leaseDuration (%v) must be greater than renewDeadline (%v)", ErrInvalidConfig, c.LeaseDuration, c.RenewDeadline)
	}
	slowestTry := time.Duration(float64(c.RetryPeriod)*(1+c.JitterFactor)) + c.OpTimeout
	if c.RenewDeadline <= slowestTry {
		return fmt.Errorf("%w: renewDeadline (%v) must be greater than retryPeriod*(1+jitterFactor) + opTimeout (%v)", ErrInvalidConfig, c.RenewDeadline, slowestTry)
	}
	if c.FastFailover {
		return c.validateLock()
	}
	return nil
}

// validateLock checks the session-lock timings:
// renewDeadline > lockWindow >= 3*lockCheckPeriod.
func (c Config) validateLock() error {
	if err := checkMillis(" when fastFailover is on", field{"lockWindow", c.LockWindow}, field{"lockCheckPeriod", c.LockCheckPeriod}); err != nil {
		return err
	}
	if 3*c.LockCheckPeriod > c.LockWindow {
		return fmt.Errorf("%w: lockCheckPeriod (%v) must be at most lockWindow/3 (%v)", ErrInvalidConfig, c.LockCheckPeriod, c.LockWindow/3)
	}
	if c.LockWindow >= c.RenewDeadline {
		return fmt.Errorf("%w: lockWindow (%v) must be less than renewDeadline (%v)", ErrInvalidConfig, c.LockWindow, c.RenewDeadline)
	}
	return nil
}

type field struct {
	name  string
	value time.Duration
}

// checkMillis requires each duration to be a whole number of milliseconds,
// at least one (when adds the condition to the message).
func checkMillis(when string, fields ...field) error {
	for _, f := range fields {
		if f.value < time.Millisecond {
			return fmt.Errorf("%w: %s is %v: must be at least 1ms%s", ErrInvalidConfig, f.name, f.value, when)
		}
		if f.value%time.Millisecond != 0 {
			return fmt.Errorf("%w: %s is %v: must be a whole number of milliseconds", ErrInvalidConfig, f.name, f.value)
		}
	}
	return nil
}

// ValidateName accepts 1..MaxNameLength characters of valid UTF-8 with no
// control characters and no surrounding white space (databases disagree on
// whether trailing spaces are significant in a key).
func ValidateName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case name == "":
		return fmt.Errorf("%w: name is empty: must be 1..%d characters", ErrInvalidConfig, MaxNameLength)
	case n > MaxNameLength:
		return fmt.Errorf("%w: name has %d characters: must be at most %d", ErrInvalidConfig, n, MaxNameLength)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: name is not valid UTF-8", ErrInvalidConfig)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: name %q: must not start or end with white space", ErrInvalidConfig, name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: name %q: must not contain control characters", ErrInvalidConfig, name)
	}
	return nil
}
