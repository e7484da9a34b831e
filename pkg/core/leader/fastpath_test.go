package leader_test

import (
	"context"
	"fmt"
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

// lockConfig is fastConfig with the session-lock path on; a retry period
// of 400ms tells a handover through the lock from one through a poll.
func lockConfig(name string) leader.Config {
	c := fastConfig(name)
	c.RetryPeriod = 400 * time.Millisecond
	c.FastFailover, c.LockWindow, c.LockCheckPeriod = true, 300*time.Millisecond, 100*time.Millisecond
	return c
}

// killSession ends a server session from outside, as an operator's KILL or
// pg_terminate_backend would.
func killSession(ctx context.Context, admin *gorm.DB, dialect, session string) {
	GinkgoHelper()
	if dialect == database.MySQL {
		Expect(admin.WithContext(ctx).Exec("KILL "+session).Error).To(Succeed(), "kill session %s", session)
		return
	}
	var ok bool
	Expect(admin.WithContext(ctx).Raw("SELECT pg_terminate_backend(CAST(? AS INTEGER))", session).Scan(&ok).Error).To(Succeed(), "terminate backend %s", session)
	Expect(ok).To(BeTrue(), "backend %s was running", session)
}

var _ = Describe("Fast failover", func() {
	for _, dialect := range dbtest.Dialects {
		Describe("on "+dialect, Label(dialect), Ordered, func() {
			var tdb *dbtest.DB

			openPool := func(cfg database.Config) *gorm.DB {
				GinkgoHelper()
				db, err := database.Open(context.Background(), cfg)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
				return db
			}
			openLock := func(ctx context.Context, db *gorm.DB, election string) *leader.TestLock {
				GinkgoHelper()
				l, err := leader.OpenTestLock(ctx, db, election)
				Expect(err).NotTo(HaveOccurred())
				return l
			}
			newElector := func(db *gorm.DB, cfg leader.Config) *leader.LeaseElector {
				GinkgoHelper()
				epochs, err := leader.NewEpochs(db)
				Expect(err).NotTo(HaveOccurred())
				e, err := leader.NewLeaseElector(db, epochs, cfg, leader.WithLogger(GinkgoLogr))
				Expect(err).NotTo(HaveOccurred())
				Expect(e.Prepare(context.Background())).To(Succeed())
				return e
			}
			type won struct {
				l  leader.Leadership
				at time.Time
			}
			campaign := func(ctx context.Context, e *leader.LeaseElector) <-chan won {
				out := make(chan won, 1)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, err := e.Campaign(ctx)
					if err == nil {
						out <- won{l, time.Now()}
					}
					close(out)
				}()
				DeferCleanup(wg.Wait)
				return out
			}
			// endedAt watches a term's context and yields when it ended.
			endedAt := func(l leader.Leadership) <-chan time.Time {
				out := make(chan time.Time, 1)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-l.Context().Done()
					out <- time.Now()
				}()
				DeferCleanup(wg.Wait)
				return out
			}

			BeforeAll(func() {
				tdb = dbtest.Ginkgo("pkg/core/leader", dialect)
			})

			Describe("the session lock", func() {
				It("excludes a second session until the first closes, and then wakes the waiter at once", func(ctx SpecContext) {
					db := openPool(tdb.Config)
					name := newElection("lock")
					a, b := openLock(ctx, db, name), openLock(ctx, db, name)
					defer b.Close()
					Expect(a.Acquire(ctx, 10*time.Millisecond)).To(BeTrue())
					Expect(a.Check(ctx)).To(Succeed())
					Expect(b.Server()).To(Equal(a.Server()), "one server, one identity")
					Expect(b.Session()).NotTo(Equal(a.Session()))
					start := time.Now()
					Expect(b.Acquire(ctx, 200*time.Millisecond)).To(BeFalse())
					Expect(time.Since(start)).To(BeNumerically(">=", 150*time.Millisecond), "the wait is a real wait")

					got := make(chan time.Time, 1)
					go func() {
						ok, err := b.Acquire(ctx, 5*time.Second)
						if ok && err == nil {
							got <- time.Now()
						}
						close(got)
					}()
					Consistently(got, "100ms").ShouldNot(Receive())
					closed := time.Now()
					Expect(a.Close()).To(Succeed())
					var at time.Time
					Eventually(got, "2s").Should(Receive(&at))
					// Generous: the waiter's own wait was 5s; a wake-up by the
					// release shows as far less, however loaded the machine.
					Expect(at.Sub(closed)).To(BeNumerically("<", time.Second), "a released lock wakes the waiter at once")
					Expect(b.Check(ctx)).To(Succeed())
				})

				It("is not held by a different election", func(ctx SpecContext) {
					db := openPool(tdb.Config)
					a, b := openLock(ctx, db, newElection("lock-a")), openLock(ctx, db, newElection("lock-b"))
					defer a.Close()
					defer b.Close()
					Expect(a.Acquire(ctx, 10*time.Millisecond)).To(BeTrue())
					Expect(b.Acquire(ctx, 10*time.Millisecond)).To(BeTrue())
				})

				if dialect != database.SQLite {
					It("is freed when the server ends the session, and the holder's next check fails", func(ctx SpecContext) {
						db := openPool(tdb.Config)
						name := newElection("lock-kill")
						a, b := openLock(ctx, db, name), openLock(ctx, db, name)
						defer a.Close()
						defer b.Close()
						Expect(a.Acquire(ctx, 10*time.Millisecond)).To(BeTrue())
						killSession(ctx, db, dialect, a.Session())
						Expect(b.Acquire(ctx, 2*time.Second)).To(BeTrue())
						Expect(a.Check(ctx)).To(MatchError(leader.ErrLockLost))
						Expect(a.TakeoverWait(300*time.Millisecond)).To(Equal(335*time.Millisecond), "D*(1+10%)+5ms")
					})
				} else {
					It("needs no takeover wait: the kernel frees the flock only with its descriptor", func(ctx SpecContext) {
						l := openLock(ctx, openPool(tdb.Config), newElection("lock-file"))
						defer l.Close()
						Expect(l.TakeoverWait(300 * time.Millisecond)).To(BeZero())
					})
				}
			})

			Describe("the elector", func() {
				It("leads lock-fenced, shows it in the lease, and hands over through the lock on Resign", func(ctx SpecContext) {
					// Slow polls (every 5s), so that a follower woken by the lock
					// is told apart from one that polled, by a wide margin.
					cfg := lockConfig(newElection("handover"))
					cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod, cfg.OpTimeout = 20*time.Second, 14*time.Second, 5*time.Second, time.Second
					a, b := newElector(openPool(tdb.Config), cfg), newElector(openPool(tdb.Config), cfg)
					var wa, wb won
					Eventually(campaign(ctx, a), "10s").Should(Receive(&wa))
					path, reason := wa.l.(leader.FailoverPather).FailoverPath()
					Expect(path).To(Equal(leader.PathLockFenced), reason)
					rec, err := b.Leader(ctx)
					Expect(err).NotTo(HaveOccurred())
					Expect(rec.Path).To(Equal(leader.PathLockFenced))
					Expect(rec.Holder).To(Equal(a.Identity()))

					bwins := campaign(ctx, b)
					Consistently(bwins, "500ms").ShouldNot(Receive(), "a live lock-fenced leader is not taken over")
					resigned := time.Now()
					Expect(wa.l.Resign(ctx)).To(Succeed())
					Eventually(bwins, "5s").Should(Receive(&wb))
					Expect(wb.at.Sub(resigned)).To(BeNumerically("<", cfg.RetryPeriod/2), "the follower woke on the lock, not at its next poll (every %v)", cfg.RetryPeriod)
					path, _ = wb.l.(leader.FailoverPather).FailoverPath()
					Expect(path).To(Equal(leader.PathLockFenced))
					Expect(wb.l.Term().Number).To(BeNumerically(">", wa.l.Term().Number))
					Expect(wb.l.Resign(ctx)).To(Succeed())
				})

				It("turns the term lease-only, with one warning and without ending it, when the lock's server session changes under it", func(ctx SpecContext) {
					cfg := lockConfig(newElection("broken"))
					a, b := newElector(openPool(tdb.Config), cfg), newElector(openPool(tdb.Config), cfg)
					broken := make(chan struct{})
					leader.BreakLockSession(a, broken)
					var wa, wb won
					Eventually(campaign(ctx, a), "10s").Should(Receive(&wa))
					bwins := campaign(ctx, b)
					path, _ := wa.l.(leader.FailoverPather).FailoverPath()
					Expect(path).To(Equal(leader.PathLockFenced))

					close(broken)
					Eventually(func() string { p, _ := wa.l.(leader.FailoverPather).FailoverPath(); return p }, "2s").Should(Equal(leader.PathLeaseOnly))
					Expect(wa.l.Context().Err()).NotTo(HaveOccurred(), "the term goes on, lease-only")
					Expect(a.LockOff()).To(ContainSubstring("the session changed"))
					rec, err := b.Leader(ctx)
					Expect(err).NotTo(HaveOccurred())
					Expect(rec.Path).To(Equal(leader.PathLeaseOnly), "the row says so before any follower could act on it")
					Expect(rec.PathReason).To(ContainSubstring("session lock unusable"))
					Consistently(bwins, cfg.LeaseDuration).ShouldNot(Receive(), "the lease-only leader keeps renewing; no follower takes over")
					Expect(wa.l.Context().Err()).NotTo(HaveOccurred())

					Expect(wa.l.Resign(ctx)).To(Succeed())
					Eventually(bwins, "5s").Should(Receive(&wb))
					Expect(wb.l.Resign(ctx)).To(Succeed())
				})

				if dialect != database.SQLite {
					It("keeps the term through lock checks that run past the lock window: lease-only, saying why, while they are late, lock-fenced again after the next one", func(ctx SpecContext) {
						cfg := lockConfig(newElection("late"))
						// Room for a check to wait a whole second without
						// timing out, as on a stalled server.
						cfg.LeaseDuration, cfg.RenewDeadline, cfg.OpTimeout = 8*time.Second, 6*time.Second, 3*time.Second
						a, b := newElector(openPool(tdb.Config), cfg), newElector(openPool(tdb.Config), cfg)
						gate := &leader.LockCheckGate{}
						DeferCleanup(gate.Release)
						leader.GateLockChecks(a, gate)
						var wa, wb won
						Eventually(campaign(ctx, a), "10s").Should(Receive(&wa))
						bwins := campaign(ctx, b)
						pathOf := func() string { p, _ := wa.l.(leader.FailoverPather).FailoverPath(); return p }
						Expect(pathOf()).To(Equal(leader.PathLockFenced))

						gate.Hold()
						Eventually(pathOf, "2s").Should(Equal(leader.PathLeaseOnly))
						_, reason := wa.l.(leader.FailoverPather).FailoverPath()
						Expect(reason).To(ContainSubstring("lock check late"))
						rec, err := b.Leader(ctx)
						Expect(err).NotTo(HaveOccurred())
						Expect(rec.Path).To(Equal(leader.PathLeaseOnly), "the row says so: no follower takes over early")
						Consistently(wa.l.Context().Done(), 3*cfg.LockWindow).ShouldNot(BeClosed(), "the term goes on under its lease while the check is late")
						Expect(time.Until(wa.l.ValidUntil())).To(BeNumerically(">", cfg.LockWindow), "bound by the lease now, not the lock window")

						gate.Release()
						Eventually(pathOf, "2s").Should(Equal(leader.PathLockFenced))
						Eventually(func() string { r, _ := b.Leader(ctx); return r.Path }, "2s").Should(Equal(leader.PathLockFenced))
						rec, err = b.Leader(ctx)
						Expect(err).NotTo(HaveOccurred())
						Expect(rec.LockWindow).To(BeNumerically(">", cfg.LockWindow), "the late check asked for a larger window")
						Expect(time.Until(wa.l.ValidUntil())).To(BeNumerically("<=", rec.LockWindow), "bound by the lock window again")
						Consistently(bwins, 2*rec.LockWindow).ShouldNot(Receive())
						Expect(wa.l.Context().Err()).NotTo(HaveOccurred())

						Expect(wa.l.Resign(ctx)).To(Succeed())
						Eventually(bwins, "5s").Should(Receive(&wb))
						Expect(wb.l.Resign(ctx)).To(Succeed())
					})
				}

				if dialect != database.SQLite {
					It("stays lock-fenced while every lock check runs two thirds of the window late: it grows the window, in the row before counting on it, shrinks it back once checks are fast, and a follower's takeover waits the grown window", func(ctx SpecContext) {
						cfg := lockConfig(newElection("slow"))
						cfg.LeaseDuration, cfg.RenewDeadline, cfg.OpTimeout = 8*time.Second, 6*time.Second, 3*time.Second
						admin := openPool(tdb.Config)
						a, b := newElector(openPool(tdb.Config), cfg), newElector(openPool(tdb.Config), cfg)
						gate := &leader.LockCheckGate{}
						leader.GateLockChecks(a, gate)
						leader.HoldLockWindowAtMost(a, 25)
						var wa, wb won
						Eventually(campaign(ctx, a), "10s").Should(Receive(&wa))
						ended := endedAt(wa.l)
						bwins := campaign(ctx, b)
						row := func() leader.Record {
							r, err := b.Leader(ctx)
							Expect(err).NotTo(HaveOccurred())
							return r
						}
						Expect(row().LockWindow).To(Equal(cfg.LockWindow))

						slow := 2 * cfg.LockWindow / 3
						gate.Slow(slow)
						fencedWide := And(
							HaveField("Path", leader.PathLockFenced),
							HaveField("LockWindow", BeNumerically(">=", 6*slow)))
						Eventually(row, "10s").Should(fencedWide, "lock-fenced again, on a window that the slow checks fit into")
						grown := row().LockWindow
						Expect(grown).To(BeNumerically("<", cfg.RenewDeadline))
						pathOf := func() string { p, _ := wa.l.(leader.FailoverPather).FailoverPath(); return p }
						Eventually(pathOf, "2s").Should(Equal(leader.PathLockFenced), "the term learns it from the write")
						Expect(time.Until(wa.l.ValidUntil())).To(BeNumerically("<=", grown), "the term counts on the grown window, no more")
						Consistently(row, 3*grown).Should(fencedWide, "and stays so while the checks are slow")
						Expect(wa.l.Context().Err()).NotTo(HaveOccurred())

						gate.Slow(0)
						Eventually(row, "60s").Should(And(
							HaveField("Path", leader.PathLockFenced),
							HaveField("LockWindow", cfg.LockWindow)), "back to the configured window once checks are fast")
						Expect(wa.l.Context().Err()).NotTo(HaveOccurred())

						gate.Slow(slow)
						Eventually(row, "10s").Should(fencedWide)
						grown = row().LockWindow
						var session string
						Expect(admin.Raw("SELECT lock_session FROM leader_leases WHERE name = ?", cfg.Name).Scan(&session).Error).To(Succeed())
						killed := time.Now()
						killSession(ctx, admin, dialect, session)
						var endAt time.Time
						Eventually(ended, "5s").Should(Receive(&endAt))
						Eventually(bwins, "10s").Should(Receive(&wb))
						Expect(endAt.Before(wb.at)).To(BeTrue(), "R1: the old term ended (%v) before the new one began (%v)", endAt, wb.at)
						Expect(wb.at.Sub(killed)).To(BeNumerically(">=", grown), "the follower waited the grown window, not the configured one")
						Expect(wb.l.Term().Number).To(BeNumerically(">", wa.l.Term().Number))
						Eventually(wa.l.Done(), "5s").Should(BeClosed())
						Expect(wa.l.Resign(ctx)).To(Succeed())
						Expect(wb.l.Resign(ctx)).To(Succeed())
					})
				}

				It("leads lease-only, saying why, when fast failover is off", func(ctx SpecContext) {
					cfg := lockConfig(newElection("off"))
					cfg.FastFailover = false
					var w won
					Eventually(campaign(ctx, newElector(openPool(tdb.Config), cfg)), "10s").Should(Receive(&w))
					path, reason := w.l.(leader.FailoverPather).FailoverPath()
					Expect(path).To(Equal(leader.PathLeaseOnly))
					Expect(reason).To(Equal("fast failover is off"))
					Expect(w.l.Resign(ctx)).To(Succeed())
				})

				if dialect != database.SQLite {
					It("ends the term at once when the server kills the lock session; the follower takes over after the lock window, before the lease expires", func(ctx SpecContext) {
						cfg := lockConfig(newElection("killed"))
						admin := openPool(tdb.Config)
						a, b := newElector(openPool(tdb.Config), cfg), newElector(openPool(tdb.Config), cfg)
						var wa, wb won
						Eventually(campaign(ctx, a), "10s").Should(Receive(&wa))
						ended := endedAt(wa.l)
						bwins := campaign(ctx, b)
						var session string
						Expect(admin.Raw("SELECT lock_session FROM leader_leases WHERE name = ?", cfg.Name).Scan(&session).Error).To(Succeed())
						Expect(session).NotTo(BeEmpty())
						Consistently(bwins, "300ms").ShouldNot(Receive())

						killed := time.Now()
						killSession(ctx, admin, dialect, session)
						var endAt time.Time
						Eventually(ended, "2s").Should(Receive(&endAt))
						Expect(context.Cause(wa.l.Context())).To(MatchError(leader.ErrLockLost))
						Expect(endAt.Sub(killed)).To(BeNumerically("<", cfg.LockWindow), "the leader stops within its lock window")
						Eventually(bwins, "5s").Should(Receive(&wb))
						Expect(endAt.Before(wb.at)).To(BeTrue(), "R1: the old term ended (%v) before the new one began (%v)", endAt, wb.at)
						Expect(wb.at.Sub(killed)).To(BeNumerically(">=", 330*time.Millisecond), "the follower waited D*(1+drift)+eps")
						Expect(wb.at.Sub(killed)).To(BeNumerically("<", cfg.LeaseDuration-cfg.RetryPeriod), "and no longer than the lease")
						Expect(wb.l.Term().Number).To(BeNumerically(">", wa.l.Term().Number))
						Expect(admin.Transaction(func(tx *gorm.DB) error { return leader.Fence(tx, wa.l.Term()) })).To(MatchError(leader.ErrFenced), "R2: the old term is fenced")
						Eventually(wa.l.Done(), "5s").Should(BeClosed())
						Expect(wa.l.Resign(ctx)).To(Succeed())
						Expect(wb.l.Resign(ctx)).To(Succeed())
					})

					It("ends the term when the server ends the idle lock session (idle timeout shorter than the check period), and the follower takes over before the lease expires", func(ctx SpecContext) {
						cfg := lockConfig(newElection("idle"))
						idle := tdb.Config
						if dialect == database.MySQL {
							// wait_timeout has whole seconds: checks every 1.5s.
							cfg.LeaseDuration, cfg.RenewDeadline, cfg.LockWindow, cfg.LockCheckPeriod = 9*time.Second, 6*time.Second, 4500*time.Millisecond, 1500*time.Millisecond
							idle.DSN += "&wait_timeout=1"
						} else {
							idle.DSN += "&idle_session_timeout=50"
						}
						a, b := newElector(openPool(idle), cfg), newElector(openPool(tdb.Config), cfg)
						var wa, wb won
						Eventually(campaign(ctx, a), "10s").Should(Receive(&wa))
						started := time.Now()
						ended := endedAt(wa.l)
						bwins := campaign(ctx, b)
						var endAt time.Time
						Eventually(ended, 3*cfg.LockCheckPeriod+2*time.Second).Should(Receive(&endAt))
						Expect(context.Cause(wa.l.Context())).To(MatchError(leader.ErrLockLost))
						Eventually(bwins, cfg.LeaseDuration).Should(Receive(&wb))
						Expect(endAt.Before(wb.at)).To(BeTrue(), "R1: the old term ended (%v) before the new one began (%v)", endAt, wb.at)
						Expect(wb.at.Sub(started)).To(BeNumerically("<", cfg.LeaseDuration-cfg.RetryPeriod), "taken over through the lock, before the lease expired")
						path, _ := wb.l.(leader.FailoverPather).FailoverPath()
						Expect(path).To(Equal(leader.PathLockFenced))
						Eventually(wa.l.Done(), "10s").Should(BeClosed())
						Expect(wb.l.Resign(ctx)).To(Succeed())
						Expect(wa.l.Resign(ctx)).To(Succeed())
					})

					It("stops a leader whose connections are black-holed within its lock window, before any successor starts", func(ctx SpecContext) {
						cfg := lockConfig(newElection("blackhole"))
						proxy, err := faultproxy.Start(tdb.Addr)
						Expect(err).NotTo(HaveOccurred())
						DeferCleanup(proxy.Close)
						via, err := tdb.ConfigVia(proxy.Addr())
						Expect(err).NotTo(HaveOccurred())
						via.IOTimeout = time.Second
						admin := openPool(tdb.Config)
						a, b := newElector(openPool(via), cfg), newElector(openPool(tdb.Config), cfg)
						var wa, wb won
						Eventually(campaign(ctx, a), "10s").Should(Receive(&wa))
						ended := endedAt(wa.l)
						bwins := campaign(ctx, b)
						Consistently(bwins, "300ms").ShouldNot(Receive())

						paused := time.Now()
						proxy.Pause()
						DeferCleanup(proxy.Resume)
						var endAt time.Time
						Eventually(ended, "2s").Should(Receive(&endAt))
						Expect(endAt.Sub(paused)).To(BeNumerically("<=", cfg.LockWindow+50*time.Millisecond), "the leader stops within its lock window")
						Eventually(bwins, "10s").Should(Receive(&wb))
						Expect(endAt.Before(wb.at)).To(BeTrue(), "R1: the old term ended (%v) before the new one began (%v)", endAt, wb.at)
						Expect(admin.Transaction(func(tx *gorm.DB) error { return leader.Fence(tx, wa.l.Term()) })).To(MatchError(leader.ErrFenced), "R2: the old term is fenced")
						// Which path the successor took depends on whether the
						// server saw the lock session end: the leader's driver
						// closes a connection whose statement timed out, and
						// the proxy passes the close on. Behind a real
						// partition the server keeps the session, and the
						// successor waits for the lease.
						path, reason := wb.l.(leader.FailoverPather).FailoverPath()
						AddReportEntry("black-holed leader", fmt.Sprintf("successor after %v on the %s path (%s)", wb.at.Sub(paused), path, reason))
						if path == leader.PathLeaseOnly {
							Expect(wb.at.Sub(paused)).To(BeNumerically(">=", cfg.LeaseDuration-cfg.RetryPeriod-100*time.Millisecond), "lease-only: no early takeover")
						}
						proxy.Resume()
						Eventually(wa.l.Done(), "10s").Should(BeClosed())
						Expect(wb.l.Resign(ctx)).To(Succeed())
						Expect(wa.l.Resign(ctx)).To(Succeed())
					})
				}
			})
		})
	}
})
