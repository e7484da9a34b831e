package leader_test

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// The fencing epoch: terms that no lease row can undo, and fences that never
// hold up the leader's renewals.
var _ = Describe("Fencing epoch", func() {
	for _, dialect := range dbtest.Dialects {
		Describe("on "+dialect, Label(dialect), Ordered, func() {
			var tdb *dbtest.DB
			openPool := func() *gorm.DB {
				GinkgoHelper()
				db, err := database.Open(context.Background(), tdb.Config)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
				return db
			}
			newElector := func(cfg leader.Config, id string) *leader.LeaseElector {
				GinkgoHelper()
				db := openPool()
				epochs, err := leader.NewEpochs(db)
				Expect(err).NotTo(HaveOccurred())
				e, err := leader.NewLeaseElector(db, epochs, cfg, leader.WithLogger(GinkgoLogr), leader.WithIdentity(id))
				Expect(err).NotTo(HaveOccurred())
				Expect(e.Prepare(context.Background())).To(Succeed())
				return e
			}
			win := func(ctx context.Context, e *leader.LeaseElector) leader.Leadership {
				GinkgoHelper()
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				DeferCleanup(cancel)
				ls, err := e.Campaign(cctx)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { _ = ls.Resign(context.Background()) })
				return ls
			}

			BeforeAll(func() { tdb = dbtest.Ginkgo("pkg/core/leader", dialect) })

			corruptions := map[string]string{
				"the lease row's term is lowered": "UPDATE leader_leases SET term = 1",
				"the lease row is deleted":        "DELETE FROM leader_leases",
				"the lease table is dropped":      "DROP TABLE leader_leases",
				"the holder is garbage":           "UPDATE leader_leases SET holder = 'garbage\x01', term = 0",
				"the expiry is far in the future": "UPDATE leader_leases SET holder = 'dead', expires_at = 99999999999999",
			}
			for what, stmt := range corruptions {
				It("never lowers the term when "+what, func(ctx SpecContext) {
					cfg := fastConfig(newElection("monotonic"))
					a := newElector(cfg, "a")
					var last int64
					for range 3 {
						ls := win(ctx, a)
						Expect(ls.Term().Number).To(BeNumerically(">", last))
						last = ls.Term().Number
						Expect(ls.Resign(ctx)).To(Succeed())
					}
					Expect(openPool().Exec(stmt).Error).To(Succeed())
					if what == "the expiry is far in the future" {
						_, err := a.ForceRelease(ctx)
						Expect(err).NotTo(HaveOccurred())
					}
					// A fresh process (new pool, new elector) campaigns after the corruption.
					ls := win(ctx, newElector(cfg, "b"))
					Expect(ls.Term().Number).To(BeNumerically(">", last))
				})
			}

			It("keeps terms strictly increasing over 200 acquisitions with random corruption between them", func(ctx SpecContext) {
				cfg := fastConfig(newElection("random"))
				stmts := []string{"", "", "UPDATE leader_leases SET term = 0", "DELETE FROM leader_leases", "UPDATE leader_leases SET term = term - 5"}
				e := newElector(cfg, "r")
				db := openPool()
				var last int64
				for i := range 200 {
					ls := win(ctx, e)
					Expect(ls.Term().Number).To(BeNumerically(">", last), "acquisition %d", i)
					last = ls.Term().Number
					// A release that times out on a loaded machine leaves the
					// row ours; the next campaign re-takes it with a new term,
					// which is what is under test.
					_ = ls.Resign(ctx)
					if s := stmts[i%len(stmts)]; s != "" {
						Expect(db.Exec(s).Error).To(Succeed())
					}
				}
			})

			// SQLite has one write lock for the whole file, which every write
			// transaction (a renewal too) takes: there, the store bounds each
			// write transaction instead (chunked Replace).
			if dialect != database.SQLite {
				It("keeps the leader's term through a fenced transaction twice as long as the renew deadline", func(ctx SpecContext) {
					cfg := fastConfig(newElection("long"))
					e := newElector(cfg, "long")
					ls := win(ctx, e)
					db := openPool()
					tx := db.Begin()
					Expect(tx.Error).NotTo(HaveOccurred())
					Expect(leader.Fence(tx, ls.Term())).To(Succeed())
					Consistently(ls.Context().Done(), 2*cfg.RenewDeadline, 50*time.Millisecond).ShouldNot(BeClosed())
					Expect(tx.Commit().Error).To(Succeed())
					Expect(ls.Context().Err()).NotTo(HaveOccurred())
				})
			}

			It("fences a write of an older term once a newer term is minted, whatever the lease row says", func(ctx SpecContext) {
				cfg := fastConfig(newElection("stale"))
				a := newElector(cfg, "a")
				old := win(ctx, a)
				Expect(openPool().Exec("DELETE FROM leader_leases").Error).To(Succeed())
				Eventually(old.Context().Done(), "10s").Should(BeClosed())
				ls := win(ctx, newElector(cfg, "b"))
				Expect(ls.Term().Number).To(BeNumerically(">", old.Term().Number))
				err := openPool().Transaction(func(tx *gorm.DB) error { return leader.Fence(tx, old.Term()) })
				Expect(err).To(MatchError(leader.ErrFenced))
				Expect(openPool().Transaction(func(tx *gorm.DB) error { return leader.Fence(tx, ls.Term()) })).To(Succeed())
			})

			It("steps down when the database clock jumps ahead of the local clock", func(ctx SpecContext) {
				cfg := fastConfig(newElection("jump"))
				clock := &shiftedClock{}
				db := openPool()
				epochs, err := leader.NewEpochs(db)
				Expect(err).NotTo(HaveOccurred())
				e, err := leader.NewLeaseElector(db, epochs, cfg, leader.WithLogger(GinkgoLogr), leader.WithClock(clock))
				Expect(err).NotTo(HaveOccurred())
				Expect(e.Prepare(ctx)).To(Succeed())
				ls := win(ctx, e)
				Consistently(ls.Context().Done(), 3*cfg.RetryPeriod, 20*time.Millisecond).ShouldNot(BeClosed(), "no jump, no step-down")
				// The local clock falls behind by a whole lease: as seen from
				// here, the database clock leapt forward.
				clock.shift(-cfg.LeaseDuration)
				Eventually(ls.Context().Done(), "5s").Should(BeClosed())
				Expect(context.Cause(ls.Context())).To(MatchError(leader.ErrClockJump))
			})

			if dialect != database.SQLite {
				It("returns from Resign when its context ends, even with the database black-holed", func(ctx SpecContext) {
					proxy, err := faultproxy.Start(tdb.Addr)
					Expect(err).NotTo(HaveOccurred())
					DeferCleanup(proxy.Close)
					via, err := tdb.ConfigVia(proxy.Addr())
					Expect(err).NotTo(HaveOccurred())
					db, err := database.Open(ctx, via)
					Expect(err).NotTo(HaveOccurred())
					DeferCleanup(func() { _ = database.Close(db) })
					epochs, err := leader.NewEpochs(db)
					Expect(err).NotTo(HaveOccurred())
					e, err := leader.NewLeaseElector(db, epochs, fastConfig(newElection("blackhole")), leader.WithLogger(GinkgoLogr))
					Expect(err).NotTo(HaveOccurred())
					Expect(e.Prepare(ctx)).To(Succeed())
					ls := win(ctx, e)
					proxy.Pause()
					DeferCleanup(proxy.Resume) // let the stuck statements finish before the leak check
					done := make(chan error, 1)
					go func() {
						rctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
						defer cancel()
						done <- ls.Resign(rctx)
					}()
					Eventually(done, "3s").Should(Receive(MatchError(context.DeadlineExceeded)))
				})
			}

			It("logs every term with how it ended", func(ctx SpecContext) {
				name := newElection("history")
				l, err := leader.NewLease(openPool())
				Expect(err).NotTo(HaveOccurred())
				a, err := l.TryAcquire(ctx, name, "a", 100*time.Millisecond)
				Expect(err).NotTo(HaveOccurred())
				Eventually(func() error { _, err := l.TryAcquire(ctx, name, "b", time.Hour); return err }, "10s", "20ms").Should(Succeed())
				b, err := l.Get(ctx, name)
				Expect(err).NotTo(HaveOccurred())
				_, err = l.Release(ctx, b.TermOf())
				Expect(err).NotTo(HaveOccurred())
				c, err := l.TryAcquire(ctx, name, "c", time.Hour)
				Expect(err).NotTo(HaveOccurred())
				_, err = l.ForceRelease(ctx, name)
				Expect(err).NotTo(HaveOccurred())
				d, err := l.TryAcquire(ctx, name, "d", time.Hour)
				Expect(err).NotTo(HaveOccurred())

				h, err := l.Epochs().History(ctx, name, 0)
				Expect(err).NotTo(HaveOccurred())
				type ended struct {
					Term        int64
					Holder, How string
				}
				var got []ended
				for _, r := range h {
					got = append(got, ended{r.Term, r.Holder, r.How})
					Expect(r.StartedAt).NotTo(BeZero())
				}
				Expect(got).To(Equal([]ended{
					{d.Term, "d", ""},
					{c.Term, "c", leader.EndForceReleased},
					{b.Term, "b", leader.EndReleased},
					{a.Term, "a", leader.EndExpired},
				}))
			})

			It("brings dropped tables back by itself and elects a leader again", func(ctx SpecContext) {
				cfg := fastConfig(newElection("dropped"))
				e := newElector(cfg, "d")
				first := win(ctx, e)
				db := openPool()
				Expect(db.Exec("DROP TABLE leader_leases").Error).To(Succeed())
				Expect(db.Exec("DROP TABLE leader_epochs").Error).To(Succeed())
				Eventually(first.Context().Done(), "10s").Should(BeClosed())
				ls := win(ctx, e)
				Expect(ls.Term().Number).To(BeNumerically(">", first.Term().Number), "the in-process floor keeps the term rising")
			})
		})
	}
})

// shiftedClock is the real clock moved by an offset the spec sets.
type shiftedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *shiftedClock) shift(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}
