package electortest_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/electortest"
)

// fastConfig scales the defaults down, keeping their relation.
func fastConfig(name string) leader.Config {
	return leader.Config{
		Name:          name,
		LeaseDuration: 1500 * time.Millisecond,
		RenewDeadline: 1000 * time.Millisecond,
		RetryPeriod:   100 * time.Millisecond,
		JitterFactor:  0.2,
		OpTimeout:     300 * time.Millisecond,
	}
}

// The shared suite on the SQL lease, on every dialect.
var _ = Describe("Elector conformance", func() {
	for _, dialect := range dbtest.Dialects {
		Describe("on the SQL lease on "+dialect, Label(dialect), Ordered, func() {
			var tdb *dbtest.DB

			openPool := func(cfg database.Config) *gorm.DB {
				GinkgoHelper()
				db, err := database.Open(context.Background(), cfg)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
				return db
			}
			newElector := func(db *gorm.DB, election, identity string) (leader.Elector, error) {
				epochs, err := leader.NewEpochs(db)
				if err != nil {
					return nil, err
				}
				opts := []leader.Option{leader.WithLogger(GinkgoLogr)}
				if identity != "" {
					opts = append(opts, leader.WithIdentity(identity))
				}
				return leader.NewLeaseElector(db, epochs, fastConfig(election), opts...)
			}

			BeforeAll(func() { tdb = dbtest.Ginkgo("pkg/core/leader/electortest", dialect) })

			electortest.Specs(func() electortest.Backend {
				return electortest.Backend{
					New: func(_ context.Context, election, identity string) (leader.Elector, error) {
						return newElector(openPool(tdb.Config), election, identity)
					},
					NewCuttable: func(_ context.Context, election string) (leader.Elector, func(), func()) {
						GinkgoHelper()
						if dialect == database.SQLite {
							// SQLite has no network: hold the database's write lock instead.
							e, err := newElector(openPool(tdb.Config), election, "")
							Expect(err).NotTo(HaveOccurred())
							locker := openPool(tdb.Config)
							var tx *gorm.DB
							cut := func() {
								tx = locker.Begin()
								Expect(tx.Error).NotTo(HaveOccurred())
								Expect(tx.Exec(`UPDATE leader_leases SET transitions = transitions WHERE name = ?`, election).Error).To(Succeed())
							}
							heal := func() { Expect(tx.Rollback().Error).To(Succeed()) }
							return e, cut, heal
						}
						proxy, err := faultproxy.Start(tdb.Addr)
						Expect(err).NotTo(HaveOccurred())
						DeferCleanup(proxy.Close)
						via, err := tdb.ConfigVia(proxy.Addr())
						Expect(err).NotTo(HaveOccurred())
						e, err := newElector(openPool(via), election, "")
						Expect(err).NotTo(HaveOccurred())
						return e, proxy.Pause, proxy.Resume
					},
				}
			})
		})
	}
})
