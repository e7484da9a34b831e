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
			var k *cluster
			lease := harness.FastTimings().LeaseDuration

			BeforeAll(func(ctx SpecContext) {
				k = startCluster(ctx, dialect, harness.ProcessConfig{Database: provision(dialect)})
			}, NodeTimeout(5*time.Minute))

			It("replaces a leader killed with SIGKILL", func(ctx SpecContext) {
				k.killRounds(ctx, processRounds)
			}, NodeTimeout(10*time.Minute))

			It("replaces a leader frozen with SIGSTOP for longer than its lease, whose writes after SIGCONT are fenced", func(ctx SpecContext) {
				// A successor must be elected while the leader is frozen. On
				// MySQL and PostgreSQL a leader frozen inside a fenced
				// transaction holds a shared lock on the lease row, which the
				// server ends after the idle-in-transaction timeout (the renew
				// deadline). SQLite's lock belongs to the frozen process: if it
				// froze inside a transaction, nobody can write until it
				// resumes, and that is the one tolerated case.
				k.stopRounds(ctx, processRounds, lease, 3*lease, func(n, old int, start time.Time, err error) time.Duration {
					switch {
					case err == nil:
						back := time.Since(start)
						// The frozen process's lock session (or flock) is still
						// held: the successor came through the lease, not the
						// session lock.
						Expect(back).To(BeNumerically(">=", lease-harness.FastTimings().RetryPeriod-100*time.Millisecond), "SIGSTOP round %d: no early takeover of a frozen leader", n)
						return back
					case dialect == database.SQLite:
						fmt.Fprintf(GinkgoWriter, "SIGSTOP round %d: no successor while replica %d was frozen holding SQLite's lock (%v)\n", n, old, err)
						AddReportEntry(fmt.Sprintf("SIGSTOP (%s) round %d", dialect, n), "no successor while the leader was frozen: it held SQLite's lock")
					default:
						Fail(fmt.Sprintf("SIGSTOP round %d: no successor within %v while replica %d was frozen: %v", n, 3*lease, old, err))
					}
					return 0
				})
			}, NodeTimeout(10*time.Minute))

			It("hands over at once when the leader gets SIGTERM", func(ctx SpecContext) {
				k.termRounds(ctx, processRounds)
			}, NodeTimeout(10*time.Minute))

			if dialect != database.SQLite {
				It("replaces a leader whose lock session the server ends (KILL, pg_terminate_backend); the old leader steps down at once and keeps running", func(ctx SpecContext) {
					for n := 1; n <= processRounds; n++ {
						k.fault(ctx, "lock session killed", n, func(old int, _ time.Time) time.Duration {
							var session string
							Expect(k.Observer().WithContext(ctx).Raw("SELECT lock_session FROM leader_leases WHERE name = ? AND term = ?", harness.Election, k.term).Scan(&session).Error).To(Succeed())
							if session == "" {
								var rows []map[string]any
								_ = k.Observer().WithContext(ctx).Raw("SELECT * FROM leader_leases").Scan(&rows).Error
								Fail(fmt.Sprintf("the term %d of replica %d is not lock-fenced: %v", k.term, old, rows))
							}
							if dialect == database.MySQL {
								Expect(k.Observer().WithContext(ctx).Exec("KILL " + session).Error).To(Succeed())
							} else {
								var ok bool
								Expect(k.Observer().WithContext(ctx).Raw("SELECT pg_terminate_backend(CAST(? AS INTEGER))", session).Scan(&ok).Error).To(Succeed())
								Expect(ok).To(BeTrue(), "backend %s was running", session)
							}
							return 0
						}, func(old int) {
							Expect(k.Process(old).Alive()).To(BeTrue(), "a replica whose lock session ended steps down, it does not exit")
						})
					}
				}, NodeTimeout(10*time.Minute))
			}

			if dialect == database.SQLite {
				It("recovers from a leader killed in the middle of a SQLite write transaction", func(ctx SpecContext) {
					for n := 1; n <= processRounds; n++ {
						k.fault(ctx, "process SIGKILL mid-transaction", n, func(old int, _ time.Time) time.Duration {
							attempts, err := k.KillMidTransaction(ctx, old)
							Expect(err).NotTo(HaveOccurred())
							fmt.Fprintf(GinkgoWriter, "caught replica %d holding the write lock after %d freezes\n", old, attempts)
							return 0
						}, func(old int) {
							Expect(k.IntegrityCheck(ctx)).To(Equal("ok"))
							Expect(k.Restart(ctx, old)).To(Succeed())
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
