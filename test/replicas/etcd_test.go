package replicas_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/test/harness"
)

const etcdRounds = 3

// Three replica processes electing through etcd (the store and the terms
// in MariaDB), with faults injected into the leader and into etcd. Every
// round checks R1 (no two terms' leader components at once, from the
// replicas' logs) and R2 (no write of an older term after a newer term's
// first write, on the database-ordered write log).
var _ = Describe("Replica processes on etcd", Label("e2e", "etcd"), Ordered, func() {
	var (
		c      *harness.Processes
		etcd   *etcdserver.Server
		src    *harness.Source
		term   int64
		exempt []int64 // terms frozen by SIGSTOP: their logged intervals may overlap a successor's
		round  int
	)
	ttl := harness.EtcdTTL

	BeforeAll(func(ctx SpecContext) {
		db := provision(database.MySQL)
		etcd = etcdserver.Ginkgo(suiteName)
		bin := binary(ctx)
		src = newSource()
		var err error
		c, err = harness.StartProcesses(ctx, 3, harness.ProcessConfig{Binary: bin, Database: db, Source: src, Dir: GinkgoT().TempDir(),
			Etcd: &harness.EtcdElection{Addr: etcd.Addr(), Proxied: true}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				if tl, err := c.Timeline(); err == nil {
					for _, iv := range tl.Intervals() {
						fmt.Fprintln(GinkgoWriter, iv)
					}
				}
			}
			Expect(c.Close()).To(Succeed())
		})
		_, term = waitProcessLeader(ctx, c, 0, time.Now())
		checkProcesses(ctx, c, src)
	}, NodeTimeout(5*time.Minute))

	// fault runs one round: the leader writes for a moment, inject strikes,
	// the source changes, a leader of a newer term must come, and R1, R2
	// and the store's convergence are checked.
	fault := func(ctx context.Context, name string, inject func(old int, start time.Time), after func(old int)) {
		GinkgoHelper()
		round++
		old, ok, _ := processLeaderIndex(ctx, c, term)
		Expect(ok).To(BeTrue(), "replica of term %d leads", term)
		stopChurn := src.Churn("churn.yaml", 20*time.Millisecond)
		Eventually(ctx, func() (map[int64]int64, error) { return c.WriteLog.TermsWritten(ctx) }).
			WithTimeout(convergeBound).WithPolling(poll).Should(HaveKeyWithValue(term, BeNumerically(">", 5)))
		start := time.Now()
		inject(old, start)
		mutate(src, round)
		_, newTerm, back := waitProcessLeaderAfter(ctx, c, term, start)
		Expect(newTerm).To(BeNumerically(">", term))
		Expect(stopChurn()).To(Succeed())
		if after != nil {
			after(old)
		}
		conv := checkProcesses(ctx, c, src, exempt...)
		report(name+" (etcd)", round, map[string]time.Duration{"leader back": back, "store converged": conv})
		term = newTerm
	}
	noLeader := func(ctx context.Context) {
		GinkgoHelper()
		Eventually(ctx, func() ([]int, error) { idx, _, err := c.Leaders(ctx); return idx, err }).
			WithTimeout(leaderBound).WithPolling(poll).Should(BeEmpty(), "every replica demotes")
	}

	It("replaces a leader killed with SIGKILL within the TTL and a keep-alive interval", func(ctx SpecContext) {
		for range etcdRounds {
			fault(ctx, "process SIGKILL", func(old int, _ time.Time) { Expect(c.Kill(old)).To(Succeed()) },
				func(old int) { Expect(c.Restart(ctx, old)).To(Succeed()) })
		}
	}, NodeTimeout(5*time.Minute))

	It("hands over at once when the leader gets SIGTERM", func(ctx SpecContext) {
		for range etcdRounds {
			fault(ctx, "process SIGTERM", func(old int, _ time.Time) { Expect(c.Term(old)).To(Succeed()) }, func(old int) {
				Eventually(c.Process(old).Exited()).WithTimeout(leaderBound).Should(BeClosed())
				Expect(c.Process(old).ExitError()).NotTo(HaveOccurred(), "a graceful stop exits with status 0")
				Expect(c.Restart(ctx, old)).To(Succeed())
			})
		}
	}, NodeTimeout(5*time.Minute))

	It("replaces a leader frozen with SIGSTOP past the TTL, which steps down after SIGCONT", func(ctx SpecContext) {
		for range etcdRounds {
			var frozen int64
			fault(ctx, "process SIGSTOP", func(old int, start time.Time) {
				frozen = term
				exempt = append(exempt, frozen)
				Expect(c.Stop(old)).To(Succeed())
				wctx, cancel := context.WithTimeout(ctx, 5*ttl)
				_, _, err := c.WaitForLeader(wctx, frozen)
				cancel()
				Expect(err).NotTo(HaveOccurred(), "a successor is elected while the leader is frozen")
				Eventually(func() time.Duration { return time.Since(start) }).WithTimeout(4 * ttl).Should(BeNumerically(">", ttl+500*time.Millisecond))
				Expect(c.Cont(old)).To(Succeed())
			}, func(old int) {
				Expect(c.Process(old).Alive()).To(BeTrue(), "the resumed replica keeps running")
				Eventually(ctx, func() (bool, error) {
					info, err := c.Info(ctx, old)
					return info.Self.Leading && info.Self.Term == frozen, err
				}).WithTimeout(leaderBound).WithPolling(poll).Should(BeFalse(), "the resumed replica steps down")
			})
		}
	}, NodeTimeout(5*time.Minute))

	It("demotes every replica while etcd is unreachable, none exits, and a leader returns once it is back", func(ctx SpecContext) {
		fault(ctx, "etcd unreachable", func(int, time.Time) {
			for i := range c.N() {
				c.Process(i).EtcdProxy.Pause()
			}
			noLeader(ctx)
			Consistently(func() bool {
				for i := range c.N() {
					if !c.Process(i).Alive() {
						return false
					}
				}
				return true
			}, ttl).Should(BeTrue(), "no replica exits")
			for i := range c.N() {
				c.Process(i).EtcdProxy.Resume()
			}
		}, nil)
	}, NodeTimeout(5*time.Minute))

	It("demotes the leader when etcd restarts, and elects one with a higher term once it is back", func(ctx SpecContext) {
		fault(ctx, "etcd restart", func(int, time.Time) {
			etcd.Kill()
			noLeader(ctx)
			Expect(etcd.Restart(ctx)).To(Succeed())
		}, func(int) {
			for i := range c.N() {
				Expect(c.Process(i).Alive()).To(BeTrue(), "replica %d kept running", i)
			}
		})
	}, NodeTimeout(5*time.Minute))
})
