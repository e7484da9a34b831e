package leader_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

var _ = Describe("Config", Label("quick"), func() {
	It("accepts the defaults, with fast failover on or off", func() {
		c := leader.DefaultConfig()
		Expect(c.Validate()).To(Succeed())
		c.FastFailover = !c.FastFailover
		Expect(c.Validate()).To(Succeed())
	})

	DescribeTable("rejects a bad config naming the field and the rule",
		func(mutate func(*leader.Config), want string) {
			c := leader.DefaultConfig()
			mutate(&c)
			err := c.Validate()
			Expect(err).To(MatchError(leader.ErrInvalidConfig))
			Expect(err.Error()).To(ContainSubstring(want))
		},
		Entry("empty name", func(c *leader.Config) { c.Name = "" }, "name is empty"),
		Entry("long name", func(c *leader.Config) { c.Name = strings.Repeat("a", 129) }, "at most 128"),
		Entry("10 kB name", func(c *leader.Config) { c.Name = strings.Repeat("x", 10<<10) }, "at most 128"),
		Entry("padded name", func(c *leader.Config) { c.Name = " admin" }, "white space"),
		Entry("control character", func(c *leader.Config) { c.Name = "ad\x00min" }, "control characters"),
		Entry("invalid UTF-8", func(c *leader.Config) { c.Name = "ad\xffmin" }, "UTF-8"),
		Entry("zero lease", func(c *leader.Config) { c.LeaseDuration = 0 }, "leaseDuration is 0s"),
		Entry("sub-millisecond retry", func(c *leader.Config) { c.RetryPeriod = 1500 * time.Microsecond }, "retryPeriod is 1.5ms: must be a whole number of milliseconds"),
		Entry("negative op timeout", func(c *leader.Config) { c.OpTimeout = -time.Second }, "opTimeout"),
		Entry("jitter above one", func(c *leader.Config) { c.JitterFactor = 1.5 }, "jitterFactor"),
		Entry("lease not above renew deadline", func(c *leader.Config) { c.LeaseDuration = c.RenewDeadline },
			"leaseDuration (7s) must be greater than renewDeadline (7s)"),
		Entry("renew deadline too short for one retry", func(c *leader.Config) { c.RenewDeadline = 2 * time.Second },
			"renewDeadline (2s) must be greater than retryPeriod*(1+jitterFactor) + opTimeout (2.2s)"),
		Entry("zero lock window", func(c *leader.Config) { c.FastFailover, c.LockWindow = true, 0 }, "lockWindow is 0s: must be at least 1ms when fastFailover is on"),
		Entry("sub-millisecond lock check", func(c *leader.Config) { c.FastFailover, c.LockCheckPeriod = true, 1500*time.Microsecond }, "lockCheckPeriod is 1.5ms"),
		Entry("lock check too rare for its window", func(c *leader.Config) {
			c.FastFailover, c.LockWindow, c.LockCheckPeriod = true, 300*time.Millisecond, 101*time.Millisecond
		},
			"lockCheckPeriod (101ms) must be at most lockWindow/3 (100ms)"),
		Entry("lock window not below the renew deadline", func(c *leader.Config) {
			c.FastFailover, c.LockWindow, c.LockCheckPeriod = true, 7*time.Second, time.Second
		},
			"lockWindow (7s) must be less than renewDeadline (7s)"),
	)

	It("ignores the lock timings while fast failover is off", func() {
		c := leader.DefaultConfig()
		c.FastFailover, c.LockWindow, c.LockCheckPeriod = false, 0, 0
		Expect(c.Validate()).To(Succeed())
	})

	It("accepts hostile but valid names", func() {
		for _, name := range []string{`'; DROP TABLE leader_leases; --`, `"quoted"`, "选举-élection-🗳", `back\slash`} {
			Expect(leader.ValidateName(name)).To(Succeed(), name)
		}
	})

	It("builds identities that differ per elector and fit the column", func() {
		a, b := leader.NewIdentity(), leader.NewIdentity()
		Expect(a).NotTo(Equal(b))
		Expect(len(a)).To(BeNumerically("<=", leader.MaxHolderLength))
	})
})
