package leader_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// The lock window's policy, check by check, on the default timings: what
// a grown window costs is the wait of a follower taking over from a crash,
// so it should last as long as the slowness is likely to come back, and no
// longer.
var _ = Describe("The lock window", Label("quick"), func() {
	var (
		cfg   leader.Config
		tuner *leader.WindowTuner
		w     time.Duration
	)
	const fastCheck, slowCheck = 2 * time.Millisecond, 150 * time.Millisecond
	BeforeEach(func() {
		cfg = leader.DefaultConfig()
		tuner = leader.NewWindowTuner(cfg)
		w = cfg.LockWindow
	})
	// checks feeds n checks that took latency, and returns the windows seen.
	checks := func(n int, latency time.Duration) []time.Duration {
		seen := make([]time.Duration, 0, n)
		for range n {
			w = tuner.Next(w, latency)
			seen = append(seen, w)
		}
		return seen
	}
	// checksOver is how many checks at the default period last d.
	checksOver := func(d time.Duration) int { return int(d / cfg.LockCheckPeriod) }

	It("grows at once on a check slower than a sixth of it", func() {
		checks(1, slowCheck)
		Expect(w).To(BeNumerically(">=", 6*slowCheck))
		Expect(w).To(BeNumerically("<=", cfg.RenewDeadline/2))
	})

	It("comes back to the configured window in one step, within 2 s of fast checks, after an isolated slow check", func() {
		checks(1, slowCheck)
		grown := w
		seen := checks(checksOver(2*time.Second), fastCheck)
		Expect(w).To(Equal(cfg.LockWindow), "back within 2 s")
		for _, s := range seen {
			Expect(s).To(Or(Equal(grown), Equal(cfg.LockWindow)), "in one step")
		}
	})

	It("comes back only to a window that the recent checks fit into, with room", func() {
		checks(1, slowCheck)
		checks(checksOver(10*time.Second), 30*time.Millisecond)
		Expect(w).To(BeNumerically(">=", 12*30*time.Millisecond))
		Expect(w).To(BeNumerically("<", 6*slowCheck))
	})

	It("holds the grown window longer each time the slowness comes back, until it spans stalls 20 s apart", func() {
		gap := checksOver(20 * time.Second)
		heldThrough := 0
		for range 8 {
			checks(1, slowCheck)
			seen := checks(gap, fastCheck)
			if seen[len(seen)-1] > cfg.LockWindow {
				heldThrough++
			} else {
				heldThrough = 0
			}
		}
		Expect(heldThrough).To(BeNumerically(">=", 2), "the last stalls found the window still grown")
	})

	It("forgets the recurrence after a quiet minute: the next isolated slow check is held briefly again", func() {
		for range 8 {
			checks(1, slowCheck)
			checks(checksOver(5*time.Second), fastCheck)
		}
		checks(checksOver(2*time.Minute), fastCheck)
		Expect(w).To(Equal(cfg.LockWindow))
		checks(1, slowCheck)
		checks(checksOver(2*time.Second), fastCheck)
		Expect(w).To(Equal(cfg.LockWindow))
	})
})
