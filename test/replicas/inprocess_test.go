package replicas_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/internal/mariadbserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/test/harness"
)

// startInProcess starts n in-process replicas; the cleanup stops them,
// asserts that no runtime fail-stopped, and that no goroutine outlives them.
func startInProcess(db harness.Database, src *harness.Source, n int, proxied bool) *harness.InProcess {
	GinkgoHelper()
	// The throwaway MariaDB's reaper belongs to the server, which outlives
	// the spec.
	ignore := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/apache/dubbo-admin/internal/mariadbserver.(*Server).Restart.func1")}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := harness.StartInProcess(ctx, n, harness.InProcessConfig{Database: db, Source: src, Proxied: proxied})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		Expect(c.Close(ctx)).To(Succeed())
		Expect(c.FailStops()).To(BeEmpty())
		Eventually(func() error { return goleak.Find(ignore...) }).WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(2*time.Minute))
	return c
}

// waitLeader waits for exactly one leading replica whose term is not
// notTerm, and returns it with the time it took from since.
func waitLeader(c *harness.InProcess, notTerm int64, since time.Time) (int, int64, time.Duration) {
	GinkgoHelper()
	var idx int
	var term int64
	Eventually(func(g Gomega) {
		i, t, ok := c.Leader()
		g.Expect(ok).To(BeTrue(), "exactly one replica leads")
		g.Expect(t).NotTo(Equal(notTerm), "a new term")
		idx, term = i, t
	}).WithTimeout(leaderBound).WithPolling(poll).Should(Succeed())
	return idx, term, time.Since(since)
}

// checkInvariants runs the checks of every round.
func checkInvariants(ctx context.Context, c *harness.InProcess, src *harness.Source, exempt ...int64) (converged time.Duration) {
	GinkgoHelper()
	start := time.Now()
	expectStoreEqualsSource(ctx, func(ctx context.Context) (string, error) { return src.Diff(ctx, c.Store) })
	converged = time.Since(start)
	Expect(c.Timeline.Check(exempt...)).To(Succeed())
	expectWriteLogOrdered(ctx, c.WriteLog)
	Expect(c.FailStops()).To(BeEmpty())
	return converged
}

var _ = Describe("In-process replicas on sqlite", Label("quick", "sqlite"), func() {
	It("hand leadership over on a graceful stop, with the store equal to the source", func(ctx SpecContext) {
		src := newSource()
		c := startInProcess(provision(database.SQLite), src, 3, false)
		old, oldTerm, took := waitLeader(c, 0, time.Now())
		fmt.Fprintf(GinkgoWriter, "first leader: replica %d term %d after %v\n", old, oldTerm, took)
		checkInvariants(ctx, c, src)
		Eventually(func() int64 { return c.Replica(old).ProbeStats().Writes }).WithTimeout(convergeBound).Should(BeNumerically(">", 0))

		start := time.Now()
		Expect(c.Stop(ctx, old)).To(Succeed())
		mutate(src, 1)
		next, term, back := waitLeader(c, oldTerm, start)
		Expect(next).NotTo(Equal(old))
		Expect(term).To(BeNumerically(">", oldTerm))
		conv := checkInvariants(ctx, c, src)
		report("in-process graceful stop (sqlite)", 1, map[string]time.Duration{"leader back": back, "store converged": conv})

		Expect(c.Start(ctx, old)).To(Succeed())
		Consistently(func() []int { idx, _ := c.Leaders(); return idx }).WithTimeout(time.Second).WithPolling(poll).Should(Equal([]int{next}))
	}, NodeTimeout(3*time.Minute))
})

// Rounds per fault: enough to see a pattern, few enough for CI.
const inProcessRounds = 5

var _ = Describe("In-process replicas with a cut database connection", Label("e2e"), func() {
	for _, dialect := range []string{database.MySQL, database.Postgres} {
		It("replace the cut-off leader, which stops before its successor starts, on "+dialect, Label(dialect), func(ctx SpecContext) {
			src := newSource()
			c := startInProcess(provision(dialect), src, 3, true)
			_, term, _ := waitLeader(c, 0, time.Now())
			checkInvariants(ctx, c, src)
			lease := harness.FastTimings().LeaseDuration
			for round := 1; round <= inProcessRounds; round++ {
				old, ok := leaderIndex(c, term)
				Expect(ok).To(BeTrue())
				proxy := c.Replica(old).Proxy
				start := time.Now()
				proxy.Pause()
				proxy.Cut()
				mutate(src, round)
				next, newTerm, back := waitLeader(c, term, start)
				Expect(next).NotTo(Equal(old))
				Expect(c.Replica(old).Status().Role).NotTo(Equal(runtime.RoleLeading), "the cut-off replica demoted itself")
				// Keep it cut off for longer than a lease, then let it back.
				Eventually(func() time.Duration { return time.Since(start) }).WithTimeout(lease * 3).Should(BeNumerically(">", lease))
				proxy.Resume()
				conv := checkInvariants(ctx, c, src)
				report("in-process cut connection ("+dialect+")", round, map[string]time.Duration{"leader back": back, "store converged": conv})
				term = newTerm
			}
			Consistently(func() int { idx, _ := c.Leaders(); return len(idx) }).WithTimeout(time.Second).WithPolling(poll).Should(Equal(1))
			Expect(c.Timeline.Check()).To(Succeed())
		}, NodeTimeout(10*time.Minute))
	}
})

// leaderIndex returns the replica leading term.
func leaderIndex(c *harness.InProcess, term int64) (int, bool) {
	i, t, ok := c.Leader()
	return i, ok && t == term
}

var _ = Describe("In-process replicas through a database restart", Label("e2e", "mysql"), Ordered, func() {
	var srv *mariadbserver.Server

	BeforeAll(func(ctx SpecContext) {
		if ok, why := mariadbserver.Available(); !ok {
			if dbtest.Strict() {
				Fail("throwaway MariaDB: " + why)
			}
			dbtest.ReportSkip(suiteName, "throwaway mariadb", why)
			Skip(why)
		}
		var err error
		srv, err = mariadbserver.Start(ctx, GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(srv.Close)
	}, NodeTimeout(3*time.Minute))

	It("demote every replica while the database is down, keep them all running, and elect a leader when it is back", func(ctx SpecContext) {
		db, err := harness.ProvisionMariaDB(ctx, srv)
		Expect(err).NotTo(HaveOccurred())
		src := newSource()
		c := startInProcess(db, src, 3, false)
		_, term, _ := waitLeader(c, 0, time.Now())
		checkInvariants(ctx, c, src)
		lease := harness.FastTimings().LeaseDuration
		for round := 1; round <= 3; round++ {
			start := time.Now()
			srv.Stop()
			Eventually(func() []int { idx, _ := c.Leaders(); return idx }).WithTimeout(leaderBound).WithPolling(poll).Should(BeEmpty())
			demoted := time.Since(start)
			mutate(src, round)
			// Down for longer than a lease: nobody leads, nobody exits.
			Consistently(func() []int { idx, _ := c.Leaders(); return idx }).WithTimeout(lease + 500*time.Millisecond).WithPolling(poll).Should(BeEmpty())
			for i := range c.N() {
				Expect(c.Replica(i).Running()).To(BeTrue())
				Expect(c.Replica(i).Status().Role).NotTo(Equal(runtime.RoleStopped))
			}
			restarted := time.Now()
			Expect(srv.Restart(ctx)).To(Succeed())
			_, newTerm, back := waitLeader(c, term, restarted)
			Expect(newTerm).To(BeNumerically(">", term))
			conv := checkInvariants(ctx, c, src)
			fmt.Fprintf(GinkgoWriter, "database restart round %d: every replica demoted %v after the stop\n", round, demoted.Round(time.Millisecond))
			report("in-process database restart (mariadb)", round, map[string]time.Duration{"leader back": back, "store converged": conv})
			term = newTerm
		}
	}, NodeTimeout(10*time.Minute))
})
