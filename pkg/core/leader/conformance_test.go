package leader_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/electortest"
)

// fastConfig keeps the suites short (electortest.FastConfig).
func fastConfig(name string) leader.Config { return electortest.FastConfig(name) }

type skewedClock time.Duration

func (s skewedClock) Now() time.Time { return time.Now().Add(time.Duration(s)) }

// newElection is a fresh election name with prefix.
func newElection(prefix string) string { return electortest.Election(prefix) }

// The conformance suite: written once, run on every dialect.
var _ = Describe("Lease", func() {
	for _, dialect := range dbtest.Dialects {
		Describe("on "+dialect, Label(dialect), Ordered, func() {
			var tdb *dbtest.DB

			openPool := electortest.OpenPool
			openLease := func() *leader.Lease {
				GinkgoHelper()
				l, err := leader.NewLease(openPool(tdb.Config))
				Expect(err).NotTo(HaveOccurred())
				return l
			}
			newElector := func(l *leader.Lease, cfg leader.Config, opts ...leader.Option) *leader.LeaseElector {
				GinkgoHelper()
				e, err := leader.NewLeaseElector(l.DB(), l.Epochs(), cfg, append([]leader.Option{leader.WithLogger(GinkgoLogr)}, opts...)...)
				Expect(err).NotTo(HaveOccurred())
				return e
			}
			BeforeAll(func() {
				tdb = dbtest.Ginkgo("pkg/core/leader", dialect)
				l := openLease()
				Expect(l.Migrate(context.Background())).To(Succeed())
				Expect(l.Migrate(context.Background())).To(Succeed(), "migration is idempotent")
			})

			It("creates the table when several replicas migrate at once", func(ctx SpecContext) {
				Expect(openLease().DB().Exec("DROP TABLE leader_leases").Error).To(Succeed())
				leases := make([]*leader.Lease, 6)
				for i := range leases {
					leases[i] = openLease()
				}
				errs := make(chan error, len(leases))
				for _, l := range leases {
					go func() { errs <- l.Migrate(ctx) }()
				}
				for range leases {
					Expect(<-errs).To(Succeed())
				}
			})

			It("lets exactly one of 16 contenders win each of 50 rounds, with strictly increasing terms", func(ctx SpecContext) {
				name := newElection("round")
				leases := make([]*leader.Lease, 16)
				for i := range leases {
					leases[i] = openLease()
				}
				var lastTerm int64
				for round := range 50 {
					type result struct {
						holder string
						rec    leader.Record
						err    error
					}
					results := make([]result, len(leases))
					var wg sync.WaitGroup
					for i, l := range leases {
						wg.Add(1)
						go func() {
							defer wg.Done()
							holder := fmt.Sprintf("contender-%d", i)
							rec, err := l.TryAcquire(ctx, name, holder, time.Minute)
							results[i] = result{holder, rec, err}
						}()
					}
					wg.Wait()
					var winners []result
					for _, r := range results {
						if r.err == nil {
							winners = append(winners, r)
						} else {
							Expect(r.err).To(MatchError(leader.ErrHeld), "round %d", round)
						}
					}
					Expect(winners).To(HaveLen(1), "round %d", round)
					w := winners[0]
					Expect(w.rec.Term).To(BeNumerically(">", lastTerm))
					lastTerm = w.rec.Term
					_, err := leases[0].Release(ctx, w.rec.TermOf())
					Expect(err).NotTo(HaveOccurred())
				}
			})

			It("keeps the term on renew, frees at once on release, and gives a new term on every re-acquisition", func(ctx SpecContext) {
				l, other := openLease(), openLease()
				name := newElection("lifecycle")

				rec, err := l.TryAcquire(ctx, name, "a", time.Minute)
				Expect(err).NotTo(HaveOccurred())
				first := rec.TermOf()
				Expect(first.Number).To(BeEquivalentTo(1))
				Expect(rec.ExpiresAt.Sub(rec.Now)).To(Equal(time.Minute), "expiry is computed from the database's now")

				renewed, err := l.Renew(ctx, first, time.Minute, 0)
				Expect(err).NotTo(HaveOccurred())
				Expect(renewed.Term).To(Equal(first.Number))
				Expect(renewed.Holder).To(Equal("a"))

				_, err = other.TryAcquire(ctx, name, "b", time.Minute)
				Expect(err).To(MatchError(leader.ErrHeld))

				again, err := l.TryAcquire(ctx, name, "a", time.Minute)
				Expect(err).NotTo(HaveOccurred(), "a holder may re-take its own live lease")
				Expect(again.Term).To(Equal(first.Number + 1))
				_, err = l.Renew(ctx, first, time.Minute, 0)
				Expect(err).To(MatchError(leader.ErrNotHolder), "the old term cannot renew")

				_, err = l.Release(ctx, again.TermOf())
				Expect(err).NotTo(HaveOccurred())
				seen, err := other.Get(ctx, name)
				Expect(err).NotTo(HaveOccurred())
				Expect(seen.Held()).To(BeFalse())

				b, err := other.TryAcquire(ctx, name, "b", time.Minute)
				Expect(err).NotTo(HaveOccurred(), "a released lease is free at once")
				Expect(b.Term).To(Equal(again.Term + 1))
				Expect(b.Transitions).To(BeEquivalentTo(2))

				_, err = l.Release(ctx, again.TermOf())
				Expect(err).To(MatchError(leader.ErrNotHolder))
				_, err = other.Release(ctx, b.TermOf())
				Expect(err).NotTo(HaveOccurred())
				a2, err := l.TryAcquire(ctx, name, "a", time.Minute)
				Expect(err).NotTo(HaveOccurred())
				Expect(a2.Term).To(Equal(b.Term+1), "stepping down and coming back is a new term")
			})

			It("reads a never-used election as free, with the database clock", func(ctx SpecContext) {
				rec, err := openLease().Get(ctx, newElection("unused"))
				Expect(err).NotTo(HaveOccurred())
				Expect(rec.Held()).To(BeFalse())
				Expect(rec.Term).To(BeZero())
				Expect(rec.Now).To(BeTemporally("~", time.Now(), time.Hour))
			})

			It("stores hostile election names safely and rejects oversized ones", func(ctx SpecContext) {
				l := openLease()
				for _, name := range []string{`'; DROP TABLE leader_leases; --`, `"quoted" \ back`, "选举-élection-🗳", strings.Repeat("ü", 128)} {
					rec, err := l.TryAcquire(ctx, name, "holder", time.Minute)
					Expect(err).NotTo(HaveOccurred(), name)
					got, err := l.Get(ctx, name)
					Expect(err).NotTo(HaveOccurred())
					Expect(got.Election).To(Equal(name))
					Expect(got.Term).To(Equal(rec.Term))
				}
				_, err := l.TryAcquire(ctx, strings.Repeat("x", 10<<10), "holder", time.Minute)
				Expect(err).To(MatchError(leader.ErrInvalidConfig))
				_, err = l.TryAcquire(ctx, "case", "holder", time.Minute)
				Expect(err).NotTo(HaveOccurred())
				_, err = l.TryAcquire(ctx, "CASE", "other", time.Minute)
				Expect(err).NotTo(HaveOccurred(), "names are case-sensitive on every dialect")
			})

			It("shows a dead holder's far-future lease to observers and lets force release clear it", func(ctx SpecContext) {
				name := newElection("ghost")
				l := openLease()
				now, err := l.Get(ctx, name)
				Expect(err).NotTo(HaveOccurred())
				far := now.Now.Add(365 * 24 * time.Hour).UnixMilli()
				Expect(l.DB().Exec(`INSERT INTO leader_leases (name, holder, term, acquired_at, renewed_at, expires_at, transitions) VALUES (?, 'ghost-1-dead', 7, ?, ?, ?, 1)`,
					name, now.Now.UnixMilli(), now.Now.UnixMilli(), far).Error).To(Succeed())

				e := newElector(openLease(), fastConfig(name))
				seen, err := e.Leader(ctx)
				Expect(err).NotTo(HaveOccurred())
				Expect(seen.Holder).To(Equal("ghost-1-dead"))
				Expect(seen.Held()).To(BeTrue())

				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				wins := electortest.Campaign(cctx, e)
				Consistently(wins, "1s").ShouldNot(Receive(), "a live lease is not taken")

				before, err := l.ForceRelease(ctx, name)
				Expect(err).NotTo(HaveOccurred())
				Expect(before.Holder).To(Equal("ghost-1-dead"))
				var w electortest.Won
				Eventually(wins, "10s").Should(Receive(&w))
				Expect(w.L.Term().Number).To(BeEquivalentTo(8))
				Expect(w.L.Resign(ctx)).To(Succeed())
			})

			It("makes the first attempt at once, not after a retry period", func(ctx SpecContext) {
				cfg := leader.Config{Name: newElection("first"), LeaseDuration: 5 * time.Minute, RenewDeadline: 4 * time.Minute,
					RetryPeriod: time.Minute, JitterFactor: 0, OpTimeout: 5 * time.Second}
				var w electortest.Won
				Eventually(electortest.Campaign(ctx, newElector(openLease(), cfg)), "30s").Should(Receive(&w))
				Expect(w.L.Resign(ctx)).To(Succeed())
			})

			It("hands over to a follower when the leader resigns, with a higher term", func(ctx SpecContext) {
				cfg := fastConfig(newElection("handover"))
				a, b := newElector(openLease(), cfg), newElector(openLease(), cfg)
				var wa, wb electortest.Won
				Eventually(electortest.Campaign(ctx, a), "10s").Should(Receive(&wa))
				carried, ok := leader.TermFrom(wa.L.Context())
				Expect(ok).To(BeTrue())
				Expect(carried).To(Equal(wa.L.Term()))
				bwins := electortest.Campaign(ctx, b)
				Consistently(bwins, "500ms").ShouldNot(Receive())
				Expect(wa.L.Resign(ctx)).To(Succeed())
				Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrResigned))
				Eventually(bwins, "10s").Should(Receive(&wb))
				Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
				Expect(b.Observed().Holder).To(Equal(b.Identity()))
				Expect(wb.L.Resign(ctx)).To(Succeed())
				Expect(wb.L.Resign(ctx)).To(Succeed(), "resign is idempotent")
			})

			It("cancels the term when another holder force-releases and takes the lease", func(ctx SpecContext) {
				cfg := fastConfig(newElection("stolen"))
				a := newElector(openLease(), cfg)
				var wa electortest.Won
				Eventually(electortest.Campaign(ctx, a), "10s").Should(Receive(&wa))
				l := openLease()
				_, err := l.ForceRelease(ctx, cfg.Name)
				Expect(err).NotTo(HaveOccurred())
				_, err = l.TryAcquire(ctx, cfg.Name, "thief", time.Minute)
				Expect(err).NotTo(HaveOccurred())
				Eventually(wa.L.Context().Done(), "10s").Should(BeClosed())
				Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrLeaseLost))
				Expect(wa.L.Resign(ctx)).To(Succeed(), "resigning a lost term is not an error")
				rec, err := l.Get(ctx, cfg.Name)
				Expect(err).NotTo(HaveOccurred())
				Expect(rec.Holder).To(Equal("thief"), "the old holder's resign released nothing")
			})

			DescribeTable("ignores a contender's skewed wall clock",
				func(ctx SpecContext, skew time.Duration) {
					cfg := fastConfig(newElection("skew"))
					actx, stopA := context.WithCancel(ctx)
					defer stopA()
					a := newElector(openLease(), cfg, leader.WithClock(skewedClock(-skew)))
					b := newElector(openLease(), cfg, leader.WithClock(skewedClock(skew)))
					var wa, wb electortest.Won
					Eventually(electortest.Campaign(actx, a), "10s").Should(Receive(&wa))
					bwins := electortest.Campaign(ctx, b)
					Consistently(bwins, 2*cfg.LeaseDuration).ShouldNot(Receive(), "the live lease is not stolen")
					Expect(wa.L.Context().Err()).NotTo(HaveOccurred(), "the leader kept renewing")

					stopA() // the leader stops renewing and does not release: a crash
					<-wa.L.Done()
					Eventually(bwins, "10s").Should(Receive(&wb), "the expired lease is taken")
					Expect(wb.L.Term().Number).To(Equal(wa.L.Term().Number + 1))
					Expect(wb.L.Resign(ctx)).To(Succeed())
				},
				Entry("one hour ahead", time.Hour),
				Entry("one hour behind", -time.Hour),
			)

			It("cancels a cut-off leader's term before any contender acquires", func(ctx SpecContext) {
				cfg := fastConfig(newElection("cut"))
				db, cut, heal := electortest.CutPool(tdb, cfg.Name, openPool)
				leaderLease, err := leader.NewLease(db)
				Expect(err).NotTo(HaveOccurred())
				a := newElector(leaderLease, cfg)
				b := newElector(openLease(), cfg)
				var wa, wb electortest.Won
				Eventually(electortest.Campaign(ctx, a), "10s").Should(Receive(&wa))
				var cancelledAt time.Time
				watched := make(chan struct{})
				go func() {
					defer close(watched)
					<-wa.L.Context().Done()
					cancelledAt = time.Now()
				}()
				bwins := electortest.Campaign(ctx, b)

				cut()
				Eventually(watched, "10s").Should(BeClosed())
				Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrDeadlinePassed))
				heal()
				Eventually(bwins, "15s").Should(Receive(&wb))
				Expect(cancelledAt.Before(wb.At)).To(BeTrue(), "term cancelled at %v, successor acquired at %v", cancelledAt, wb.At)
				Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
				Eventually(wa.L.Done(), "15s").Should(BeClosed())
				Expect(wb.L.Resign(ctx)).To(Succeed())
				Expect(wa.L.Resign(ctx)).To(Succeed())
			})

			// SQLite's lock belongs to the frozen process itself: no server can
			// end its transaction, so this spec exists for server dialects only.
			if dialect != database.SQLite {
				It("frees the lease row of a writer frozen inside a fenced transaction after the idle-transaction timeout", func(ctx SpecContext) {
					name := newElection("frozen")
					cfg := tdb.Config
					cfg.IdleTxTimeout = time.Second
					frozen, err := leader.NewLease(openPool(cfg))
					Expect(err).NotTo(HaveOccurred())
					rec, err := frozen.TryAcquire(ctx, name, "frozen", 500*time.Millisecond)
					Expect(err).NotTo(HaveOccurred())
					tx := frozen.DB().Begin()
					Expect(tx.Error).NotTo(HaveOccurred())
					Expect(leader.Fence(tx, rec.TermOf())).To(Succeed())
					// The writer now stops, holding its shared lock, as under SIGSTOP.

					other := openLease()
					Eventually(func() error {
						opCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
						defer cancel()
						_, err := other.TryAcquire(opCtx, name, "successor", time.Minute)
						return err
					}, "30s", "100ms").Should(Succeed())
					Expect(tx.Commit().Error).To(HaveOccurred(), "the frozen transaction was ended by the server")
				})

				It("releases its lease on Resign after the server ended the pool's idle sessions", func(ctx SpecContext) {
					// Renews every 800ms, so that none runs between the kill and
					// the Resign to use up a dead connection first; under a second,
					// so that pgx does not ping a connection before handing it out.
					cfg := fastConfig(newElection("ended-pool"))
					cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod, cfg.OpTimeout = 10*time.Second, 6*time.Second, 800*time.Millisecond, time.Second
					a := newElector(openLease(), cfg)
					var wa electortest.Won
					Eventually(electortest.Campaign(ctx, a), "10s").Should(Receive(&wa))
					endOtherSessions(ctx, openPool(tdb.Config), dialect)
					Expect(wa.L.Resign(ctx)).To(Succeed(), "a pooled connection the server closed is not the release's last chance")
					rec, err := openLease().Get(ctx, cfg.Name)
					Expect(err).NotTo(HaveOccurred())
					Expect(rec.Held()).To(BeFalse(), "the lease is free at once, not when it expires")
				})
			}

			It("ends a campaign with the context's cause", func(ctx SpecContext) {
				cfg := fastConfig(newElection("cancel"))
				l := openLease()
				_, err := l.TryAcquire(ctx, cfg.Name, "someone-else", time.Hour)
				Expect(err).NotTo(HaveOccurred())
				cctx, cancel := context.WithCancelCause(ctx)
				done := make(chan error, 1)
				go func() { _, err := newElector(openLease(), cfg).Campaign(cctx); done <- err }()
				stop := errors.New("shutting down")
				cancel(stop)
				Eventually(done, "10s").Should(Receive(MatchError(stop)))
			})
		})
	}
})

// endOtherSessions ends, from the server side, every session on the test
// database but the caller's own (the database is this run's alone), and
// waits until they are gone: an idle timeout or an operator's KILL as a
// pool's idle connections meet it.
func endOtherSessions(ctx context.Context, admin *gorm.DB, dialect string) {
	GinkgoHelper()
	others := `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
	kill := "SELECT pg_terminate_backend(%d)"
	if dialect == database.MySQL {
		others = `SELECT id FROM information_schema.processlist WHERE db = DATABASE() AND id <> CONNECTION_ID()`
		kill = "KILL %d"
	}
	sqlDB, err := admin.DB()
	Expect(err).NotTo(HaveOccurred())
	conn, err := sqlDB.Conn(ctx) // one session: it must not end itself
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	sessions := func() []int64 {
		GinkgoHelper()
		rows, err := conn.QueryContext(ctx, others)
		Expect(err).NotTo(HaveOccurred())
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var id int64
			Expect(rows.Scan(&id)).To(Succeed())
			ids = append(ids, id)
		}
		Expect(rows.Err()).NotTo(HaveOccurred())
		return ids
	}
	ids := sessions()
	Expect(ids).NotTo(BeEmpty(), "the pool under test has sessions")
	for _, id := range ids {
		_, err := conn.ExecContext(ctx, fmt.Sprintf(kill, id))
		Expect(err).NotTo(HaveOccurred(), "end session %d", id)
	}
	Eventually(sessions, "5s", "10ms").Should(BeEmpty())
}
