package replicas_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/test/harness"
)

// The binary is built once, on first use, so the quick profile never
// builds it.
var (
	binOnce sync.Once
	binPath string
	binDir  string
	binErr  error
)

func binary(ctx context.Context) string {
	GinkgoHelper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "admin-replicas-bin-"); binErr == nil {
			binPath, binErr = harness.BuildBinary(ctx, binDir)
		}
	})
	Expect(binErr).NotTo(HaveOccurred())
	return binPath
}

var _ = AfterSuite(func() {
	if binDir != "" {
		Expect(os.RemoveAll(binDir)).To(Succeed())
	}
})

const processRounds = 5

var _ = Describe("Replica processes", Label("e2e"), func() {
	for _, dialect := range dbtest.Dialects {
		Context("on "+dialect, Label(dialect), Ordered, func() {
			var (
				c      *harness.Processes
				src    *harness.Source
				term   int64   // the current leader's term
				exempt []int64 // terms frozen by SIGSTOP: their intervals may overlap a successor's
				round  int
			)
			lease := harness.FastTimings().LeaseDuration

			BeforeAll(func(ctx SpecContext) {
				db := provision(dialect)
				bin := binary(ctx)
				src = newSource()
				var err error
				c, err = harness.StartProcesses(ctx, 3, harness.ProcessConfig{Binary: bin, Database: db, Source: src, Dir: GinkgoT().TempDir()})
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

			// fault runs round n of a fault: it injects the fault into the
			// leader, changes the source, waits for a leader of a newer term,
			// and checks the invariants. inject may return the time a
			// successor took, when it measured it itself (0: measured here).
			fault := func(ctx context.Context, name string, n int, inject func(old int, start time.Time) time.Duration, after func(old int)) {
				GinkgoHelper()
				round++
				old, ok, _ := processLeaderIndex(ctx, c, term)
				Expect(ok).To(BeTrue(), "replica of term %d leads", term)
				stopChurn := src.Churn("churn.yaml", 20*time.Millisecond)
				// Let the leader write for a moment so the fault hits a writer.
				Eventually(ctx, func() (map[int64]int64, error) { return c.WriteLog.TermsWritten(ctx) }).
					WithTimeout(convergeBound).WithPolling(poll).Should(HaveKeyWithValue(term, BeNumerically(">", 5)))
				start := time.Now()
				measured := inject(old, start)
				mutate(src, round)
				_, newTerm, back := waitProcessLeaderAfter(ctx, c, term, start)
				if measured > 0 {
					back = measured
				}
				Expect(newTerm).To(BeNumerically(">", term))
				Expect(stopChurn()).To(Succeed())
				if after != nil {
					after(old)
				}
				conv := checkProcesses(ctx, c, src, exempt...)
				report(name+" ("+dialect+")", n, map[string]time.Duration{"leader back": back, "store converged": conv})
				term = newTerm
			}

			It("replaces a leader killed with SIGKILL", func(ctx SpecContext) {
				for n := 1; n <= processRounds; n++ {
					fault(ctx, "process SIGKILL", n, func(old int, _ time.Time) time.Duration {
						Expect(c.Kill(old)).To(Succeed())
						return 0
					}, func(old int) {
						Expect(c.Restart(ctx, old)).To(Succeed())
					})
				}
			}, NodeTimeout(10*time.Minute))

			It("replaces a leader frozen with SIGSTOP for longer than its lease, whose writes after SIGCONT are fenced", func(ctx SpecContext) {
				for n := 1; n <= processRounds; n++ {
					var frozen int64
					fault(ctx, "process SIGSTOP", n, func(old int, start time.Time) time.Duration {
						frozen = term
						exempt = append(exempt, frozen)
						Expect(c.Stop(old)).To(Succeed())
						// A successor must be elected while the leader is
						// frozen. On MySQL and PostgreSQL a leader frozen
						// inside a fenced transaction holds a shared lock on
						// the lease row, which the server ends after the
						// idle-in-transaction timeout (the renew deadline).
						// SQLite's lock belongs to the frozen process: if it
						// froze inside a transaction, nobody can write until
						// it resumes, and that is the one tolerated case.
						wctx, cancel := context.WithTimeout(ctx, 3*lease)
						_, _, err := c.WaitForLeader(wctx, frozen)
						cancel()
						var back time.Duration
						switch {
						case err == nil:
							back = time.Since(start)
							// The frozen process's lock session (or flock)
							// is still held: the successor came through the
							// lease, not the session lock.
							Expect(back).To(BeNumerically(">=", lease-harness.FastTimings().RetryPeriod-100*time.Millisecond), "SIGSTOP round %d: no early takeover of a frozen leader", n)
						case dialect == database.SQLite:
							fmt.Fprintf(GinkgoWriter, "SIGSTOP round %d: no successor while replica %d was frozen holding SQLite's lock (%v)\n", n, old, err)
							AddReportEntry(fmt.Sprintf("SIGSTOP (%s) round %d", dialect, n), "no successor while the leader was frozen: it held SQLite's lock")
						default:
							Fail(fmt.Sprintf("SIGSTOP round %d: no successor within %v while replica %d was frozen: %v", n, 3*lease, old, err))
						}
						Eventually(func() time.Duration { return time.Since(start) }).WithTimeout(4 * lease).Should(BeNumerically(">", lease+500*time.Millisecond))
						Expect(c.Cont(old)).To(Succeed())
						return back
					}, func(old int) {
						Expect(c.Process(old).Alive()).To(BeTrue(), "the resumed replica keeps running")
						Eventually(ctx, func() (bool, error) {
							info, err := c.Info(ctx, old)
							return info.Self.Leading && info.Self.Term == frozen, err
						}).WithTimeout(leaderBound).WithPolling(poll).Should(BeFalse(), "the resumed replica steps down")
					})
				}
			}, NodeTimeout(10*time.Minute))

			It("hands over at once when the leader gets SIGTERM", func(ctx SpecContext) {
				for n := 1; n <= processRounds; n++ {
					fault(ctx, "process SIGTERM", n, func(old int, _ time.Time) time.Duration {
						Expect(c.Term(old)).To(Succeed())
						return 0
					}, func(old int) {
						Eventually(c.Process(old).Exited()).WithTimeout(leaderBound).Should(BeClosed())
						Expect(c.Process(old).ExitError()).NotTo(HaveOccurred(), "a graceful stop exits with status 0")
						Expect(c.Restart(ctx, old)).To(Succeed())
					})
				}
			}, NodeTimeout(10*time.Minute))

			if dialect != database.SQLite {
				It("replaces a leader whose lock session the server ends (KILL, pg_terminate_backend); the old leader steps down at once and keeps running", func(ctx SpecContext) {
					for n := 1; n <= processRounds; n++ {
						fault(ctx, "lock session killed", n, func(old int, _ time.Time) time.Duration {
							var session string
							Expect(c.Observer().WithContext(ctx).Raw("SELECT lock_session FROM leader_leases WHERE name = ? AND term = ?", harness.Election, term).Scan(&session).Error).To(Succeed())
							if session == "" {
								var rows []map[string]any
								_ = c.Observer().WithContext(ctx).Raw("SELECT * FROM leader_leases").Scan(&rows).Error
								Fail(fmt.Sprintf("the term %d of replica %d is not lock-fenced: %v", term, old, rows))
							}
							if dialect == database.MySQL {
								Expect(c.Observer().WithContext(ctx).Exec("KILL " + session).Error).To(Succeed())
							} else {
								var ok bool
								Expect(c.Observer().WithContext(ctx).Raw("SELECT pg_terminate_backend(CAST(? AS INTEGER))", session).Scan(&ok).Error).To(Succeed())
								Expect(ok).To(BeTrue(), "backend %s was running", session)
							}
							return 0
						}, func(old int) {
							Expect(c.Process(old).Alive()).To(BeTrue(), "a replica whose lock session ended steps down, it does not exit")
						})
					}
				}, NodeTimeout(10*time.Minute))
			}

			if dialect == database.SQLite {
				It("recovers from a leader killed in the middle of a SQLite write transaction", func(ctx SpecContext) {
					for n := 1; n <= processRounds; n++ {
						fault(ctx, "process SIGKILL mid-transaction", n, func(old int, _ time.Time) time.Duration {
							attempts, err := c.KillMidTransaction(ctx, old)
							Expect(err).NotTo(HaveOccurred())
							fmt.Fprintf(GinkgoWriter, "caught replica %d holding the write lock after %d freezes\n", old, attempts)
							return 0
						}, func(old int) {
							Expect(c.IntegrityCheck(ctx)).To(Equal("ok"))
							Expect(c.Restart(ctx, old)).To(Succeed())
						})
					}
				}, NodeTimeout(10*time.Minute))
			}
		})
	}
})

// waitProcessLeader waits for exactly one leading process with a term
// other than notTerm.
func waitProcessLeader(ctx context.Context, c *harness.Processes, notTerm int64, since time.Time) (int, int64) {
	GinkgoHelper()
	var idx int
	var term int64
	Eventually(ctx, func(g Gomega) {
		i, t, ok, err := c.Leader(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(ok).To(BeTrue(), "exactly one replica leads")
		g.Expect(t).NotTo(Equal(notTerm))
		idx, term = i, t
	}).WithTimeout(leaderBound).WithPolling(poll).Should(Succeed())
	fmt.Fprintf(GinkgoWriter, "replica %d leads term %d after %v\n", idx, term, time.Since(since).Round(time.Millisecond))
	return idx, term
}

// waitProcessLeaderAfter is waitProcessLeader that also returns the time
// from since.
func waitProcessLeaderAfter(ctx context.Context, c *harness.Processes, notTerm int64, since time.Time) (int, int64, time.Duration) {
	GinkgoHelper()
	i, t := waitProcessLeader(ctx, c, notTerm, since)
	return i, t, time.Since(since)
}

func processLeaderIndex(ctx context.Context, c *harness.Processes, term int64) (int, bool, error) {
	i, t, ok, err := c.Leader(ctx)
	return i, ok && t == term, err
}

// checkProcesses runs the checks of every round on a process cluster.
func checkProcesses(ctx context.Context, c *harness.Processes, src *harness.Source, exempt ...int64) time.Duration {
	GinkgoHelper()
	start := time.Now()
	expectStoreEqualsSource(ctx, func(ctx context.Context) (string, error) { return src.Diff(ctx, c.Store) })
	converged := time.Since(start)
	tl, err := c.Timeline()
	Expect(err).NotTo(HaveOccurred())
	Expect(tl.Check(exempt...)).To(Succeed())
	expectWriteLogOrdered(ctx, c.WriteLog)
	return converged
}
