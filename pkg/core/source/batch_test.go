package source_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// txCounter counts the write transactions of a GORM store (by their
// *sql.Tx, seen from the store's TxHook) and the rows each wrote.
type txCounter struct {
	mu   sync.Mutex
	rows map[gorm.ConnPool]int
}

func (c *txCounter) hook(tx *gorm.DB, _ string, _ store.Resource) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows[tx.Statement.ConnPool]++
	return nil
}

func (c *txCounter) transactions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rows)
}

var _ = Describe("Loop on a GORM store", Label("sqlite"), func() {
	It("applies a stream of changes in a few fenced transactions, not one each", func(sctx SpecContext) {
		leaks := goleak.IgnoreCurrent()
		DeferCleanup(func() { Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed()) })
		tdb := dbtest.Ginkgo("pkg/core/source", database.SQLite)
		db, err := tdb.Open(sctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
		lease, err := leader.NewLease(db)
		Expect(err).NotTo(HaveOccurred())
		Expect(lease.Migrate(sctx)).To(Succeed())
		rec, err := lease.TryAcquire(sctx, "loop-batch", "holder", time.Hour)
		Expect(err).NotTo(HaveOccurred())
		counter := &txCounter{rows: map[gorm.ConnPool]int{}}
		st, err := store.NewGORM(db, store.WithTxHook(counter.hook))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Migrate(sctx)).To(Succeed())

		src := newFakeSource()
		loop := &source.Loop{Name: "batch", Open: src.open, View: func() source.View { return source.Identity(kind) }, Store: st, Log: logr.Discard()}
		term := sourcetest.StartWithTerm(context.Background(), rec.TermOf(), loop.Run)
		DeferCleanup(func() { Expect(term.Stop()).To(Succeed()) })
		Eventually(counter.transactions).Should(BeZero()) // the first (empty) Replace wrote nothing

		const n = 1000
		for i := range n {
			src.set(thing(fmt.Sprintf("k%04d", i), "1"), true)
		}
		Eventually(func() (int, error) {
			keys, err := sourcetest.Keys(sctx, st, kind)
			return len(keys), err
		}).Should(Equal(n))
		Expect(counter.transactions()).To(BeNumerically("<", n/20),
			"%d changes took %d write transactions, each checking the fence", n, counter.transactions())
		r, err := st.Get(sctx, kind, "k0999")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Term).To(Equal(rec.TermOf().Number), "the batches are fenced on the term")
	})
})
