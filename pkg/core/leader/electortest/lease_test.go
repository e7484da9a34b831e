package electortest_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/electortest"
)

// The shared suite on the SQL lease, on every dialect.
var _ = Describe("Elector conformance", func() {
	for _, dialect := range dbtest.Dialects {
		Describe("on the SQL lease on "+dialect, Label(dialect), Ordered, func() {
			var tdb *dbtest.DB

			openPool := electortest.OpenPool
			newElector := func(db *gorm.DB, election, identity string) (leader.Elector, error) {
				epochs, err := leader.NewEpochs(db)
				if err != nil {
					return nil, err
				}
				opts := []leader.Option{leader.WithLogger(GinkgoLogr)}
				if identity != "" {
					opts = append(opts, leader.WithIdentity(identity))
				}
				return leader.NewLeaseElector(db, epochs, electortest.FastConfig(election), opts...)
			}

			BeforeAll(func() { tdb = dbtest.Ginkgo("pkg/core/leader/electortest", dialect) })

			electortest.Specs(func() electortest.Backend {
				return electortest.Backend{
					New: func(_ context.Context, election, identity string) (leader.Elector, error) {
						return newElector(openPool(tdb.Config), election, identity)
					},
					NewCuttable: func(_ context.Context, election string) (leader.Elector, func(), func()) {
						GinkgoHelper()
						db, cut, heal := electortest.CutPool(tdb, election, openPool)
						e, err := newElector(db, election, "")
						Expect(err).NotTo(HaveOccurred())
						return e, cut, heal
					},
				}
			})
		})
	}
})
