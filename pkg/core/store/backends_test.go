package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// backend is one store under test. The SQL fields are nil for memory.
type backend struct {
	dialect string
	store   store.ResourceStore
	tdb     *dbtest.DB
	db      *gorm.DB
	lease   *leader.Lease
}

func (b *backend) sql() bool { return b.db != nil }

var uniq atomic.Int64

// unique returns a fresh name, so that specs sharing a database never see
// each other's rows or leases.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, uniq.Add(1)) }

// termCtx returns a context carrying a live term: on SQL a fresh election
// acquired for a long time; on memory a made-up term (memory does not
// check it).
func (b *backend) termCtx(ctx context.Context) (context.Context, leader.Term) {
	GinkgoHelper()
	if !b.sql() {
		t := leader.Term{Election: "memory", Holder: "me", Number: 7}
		return leader.WithTerm(ctx, t), t
	}
	rec, err := b.lease.TryAcquire(ctx, unique("election"), "holder-a", time.Hour)
	Expect(err).NotTo(HaveOccurred())
	return leader.WithTerm(ctx, rec.TermOf()), rec.TermOf()
}

var _ = Describe("ResourceStore on memory", Label("memory"), func() {
	b := &backend{dialect: "memory"}
	BeforeEach(func() {
		b.store = store.NewMemory()
	})
	conformance(b)
	counting(b)
})

var _ = func() bool {
	for _, dialect := range dbtest.Dialects {
		Describe("ResourceStore on "+dialect, Label(dialect), Ordered, func() {
			b := &backend{dialect: dialect}
			BeforeAll(func(ctx SpecContext) {
				b.tdb = dbtest.Ginkgo("pkg/core/store", dialect)
				db, err := b.tdb.Open(ctx)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
				b.db = db
				b.lease, err = leader.NewLease(db)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.lease.Migrate(ctx)).To(Succeed())
				s, err := store.NewGORM(db)
				Expect(err).NotTo(HaveOccurred())
				Expect(s.Migrate(ctx)).To(Succeed())
				b.store = s
			}, NodeTimeout(2*time.Minute))
			conformance(b)
			counting(b)
			sqlConformance(b)
			chunkedReplace(b)
		})
	}
	return true
}()
