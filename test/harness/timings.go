package harness

import (
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Election is the election name every harness replica campaigns in.
const Election = "harness"

// FastTimings are the election timings of the suites: a crashed leader is
// replaced in about 2 s without the session lock (about 450 ms with it, on
// by default as in Admin; a wider lock window than Admin's 300ms, so that
// a loaded test machine rarely turns terms lease-only for late lock checks), a
// released lease in about 200 ms.
func FastTimings() leader.Config {
	return leader.Config{
		Name:          Election,
		LeaseDuration: 2 * time.Second,
		RenewDeadline: 1400 * time.Millisecond,
		RetryPeriod:   200 * time.Millisecond,
		JitterFactor:  0.2,
		OpTimeout:     300 * time.Millisecond,

		FastFailover:    true,
		LockWindow:      400 * time.Millisecond,
		LockCheckPeriod: 100 * time.Millisecond,
	}
}

// DefaultDrainTimeout is how long the harness lets leader components take
// to return after their term ended.
const DefaultDrainTimeout = 3 * time.Second
