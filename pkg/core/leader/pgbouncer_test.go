package leader_test

import (
	"context"
	"net/url"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/pgbouncer"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// A transaction-mode pooler runs each statement on whichever server session
// is free, and hands one session to several clients: the session lock
// excludes nothing there. The elector must notice and fall back to the lease.
var _ = Describe("Fast failover through PgBouncer in transaction mode", Label("postgres"), Ordered, func() {
	var (
		tdb *dbtest.DB
		via database.Config
	)
	BeforeAll(func(ctx SpecContext) {
		tdb = dbtest.Ginkgo("pkg/core/leader", database.Postgres)
		if ok, why := pgbouncer.Available(); !ok {
			if dbtest.Strict() {
				Fail("ADMIN_TEST_STRICT=1 and " + why)
			}
			dbtest.ReportSkip("pkg/core/leader", "pgbouncer", why)
			Skip("pgbouncer: " + why)
		}
		u, err := url.Parse(tdb.Config.DSN)
		Expect(err).NotTo(HaveOccurred())
		// One server connection: every client shares one server session.
		b, err := pgbouncer.Start(ctx, GinkgoT().TempDir(), tdb.Addr, u.User.Username(), 1)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(b.Close)
		via, err = tdb.ConfigVia(b.Addr())
		Expect(err).NotTo(HaveOccurred())
		// PgBouncer 1.18 keeps no prepared statements in transaction mode.
		via.DSN += "&default_query_exec_mode=simple_protocol"
	})

	It("never lets two leaders act at once, and falls back to the lease with the reason", func(ctx SpecContext) {
		cfg := lockConfig(newElection("pgbouncer"))
		elector := func() *leader.LeaseElector {
			db, err := database.Open(ctx, via)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
			epochs, err := leader.NewEpochs(db)
			Expect(err).NotTo(HaveOccurred())
			e, err := leader.NewLeaseElector(db, epochs, cfg, leader.WithLogger(GinkgoLogr))
			Expect(err).NotTo(HaveOccurred())
			Expect(e.Prepare(ctx)).To(Succeed())
			return e
		}
		type won struct {
			l  leader.Leadership
			at time.Time
		}
		var wg sync.WaitGroup
		DeferCleanup(wg.Wait)
		campaign := func(ctx context.Context, e *leader.LeaseElector) <-chan won {
			out := make(chan won, 1)
			wg.Go(func() {
				if l, err := e.Campaign(ctx); err == nil {
					out <- won{l, time.Now()}
				}
				close(out)
			})
			return out
		}
		a, b := elector(), elector()
		actx, acancel := context.WithCancel(ctx)
		defer acancel()
		var wa, wb won
		Eventually(campaign(actx, a), "10s").Should(Receive(&wa))
		bwins := campaign(ctx, b)
		Eventually(func() string { return a.LockOff() + b.LockOff() }, "5s").ShouldNot(BeEmpty(),
			"a candidate notices that the lock is shared")
		Expect(a.LockOff() + b.LockOff()).To(ContainSubstring("session lock unusable"))
		Consistently(bwins, cfg.LeaseDuration).ShouldNot(Receive(), "no takeover of a live leader")

		// The leader stops renewing without releasing anything, as if it
		// crashed: only the lease may hand over now.
		// (Its term may have ended already: behind one shared server
		// session its lock checks queue, and may run past its window.)
		acancel()
		Eventually(wa.l.Done(), "5s").Should(BeClosed())
		Eventually(bwins, "10s").Should(Receive(&wb))
		Expect(wb.at).To(BeTemporally(">=", wa.l.LastRenewal().Add(cfg.LeaseDuration-100*time.Millisecond)),
			"the successor waited for the lease of the leader's last renewal")
		path, reason := wb.l.(leader.FailoverPather).FailoverPath()
		Expect(path).To(Equal(leader.PathLeaseOnly))
		Expect(reason).NotTo(BeEmpty())
		direct, err := database.Open(ctx, tdb.Config)
		Expect(err).NotTo(HaveOccurred())
		defer database.Close(direct)
		Expect(direct.Transaction(func(tx *gorm.DB) error { return leader.Fence(tx, wa.l.Term()) })).To(MatchError(leader.ErrFenced))
		Expect(wb.l.Resign(ctx)).To(Succeed())
	})
})
