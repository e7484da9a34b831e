package database_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

// SQLite has no network to black-hole: these specs exist for server
// dialects only.
var _ = func() bool {
	for _, dialect := range []string{database.MySQL, database.Postgres} {
		Describe("IOTimeout on "+dialect, Label(dialect), Ordered, ContinueOnFailure, func() {
			const ioTimeout = time.Second
			var tdb *dbtest.DB
			BeforeAll(func() {
				tdb = dbtest.Ginkgo("pkg/core/database", dialect)
			})

			// blackHoled opens a pool through a proxy, with a table t, and
			// returns it with the proxy; cleanup waits for every goroutine
			// the spec started.
			blackHoled := func(ctx context.Context) (*gorm.DB, *faultproxy.Proxy) {
				GinkgoHelper()
				leaks := goleak.IgnoreCurrent()
				DeferCleanup(func() {
					Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed())
				})
				proxy, err := faultproxy.Start(tdb.Addr)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(proxy.Close)
				cfg, err := tdb.ConfigVia(proxy.Addr())
				Expect(err).NotTo(HaveOccurred())
				cfg.IOTimeout = ioTimeout
				// The server must not end the session either (the proxy
				// would pass its EOF on): only the I/O timeout may act.
				cfg.IdleTxTimeout = -1
				db, err := database.Open(ctx, cfg)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
				Expect(db.Exec(`CREATE TABLE IF NOT EXISTS t (id INT)`).Error).To(Succeed())
				return db, proxy
			}

			// returns runs f in a goroutine and delivers its error. The
			// bound allows for PostgreSQL's 2 × IOTimeout (see IOTimeout).
			returns := func(f func() error) <-chan error {
				done := make(chan error, 1)
				go func() { done <- f() }()
				return done
			}

			It("lets a statement that answers within the bound succeed", func(ctx SpecContext) {
				db, _ := blackHoled(ctx)
				sleep := `SELECT SLEEP(0.3)`
				if dialect == database.Postgres {
					sleep = `SELECT pg_sleep(0.3)`
				}
				Expect(db.WithContext(ctx).Exec(sleep).Error).To(Succeed())
			})

			It("ends a COMMIT on a black-holed connection with an error within the bound", func(ctx SpecContext) {
				db, proxy := blackHoled(ctx)
				// No deadline on the transaction's context: only the I/O
				// timeout can end it (MySQL's COMMIT takes no context anyway).
				tx := db.WithContext(context.Background()).Begin()
				Expect(tx.Error).NotTo(HaveOccurred())
				Expect(tx.Exec(`INSERT INTO t (id) VALUES (1)`).Error).To(Succeed())
				proxy.Pause()
				done := returns(func() error { return tx.Commit().Error })
				Eventually(done, 10*ioTimeout).Should(Receive(HaveOccurred()))
			})

			It("ends any statement on a black-holed connection with an error within the bound", func(ctx SpecContext) {
				db, proxy := blackHoled(ctx)
				proxy.Pause()
				done := returns(func() error {
					return db.WithContext(context.Background()).Exec(`INSERT INTO t (id) VALUES (2)`).Error
				})
				Eventually(done, 10*ioTimeout).Should(Receive(HaveOccurred()))
			})

			It("keeps serving once the network heals, on new connections", func(ctx SpecContext) {
				db, proxy := blackHoled(ctx)
				proxy.Pause()
				done := returns(func() error { return db.WithContext(context.Background()).Exec(`SELECT 1`).Error })
				Eventually(done, 10*ioTimeout).Should(Receive(HaveOccurred()))
				proxy.Resume()
				Eventually(func() error { return db.WithContext(ctx).Exec(`SELECT 1`).Error }).Should(Succeed())
			})
		})
	}
	return true
}()
