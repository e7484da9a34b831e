package discovery_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

var _ = Describe("Discovery on a GORM store with a real lease", Label("sqlite"), func() {
	It("writes under its term and stops with ErrFenced once another replica holds the lease", func(ctx SpecContext) {
		db := dbtest.Ginkgo("pkg/core/discovery", database.SQLite)
		gdb, err := db.Open(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { database.Close(gdb) })
		st, err := store.NewGORM(gdb)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Migrate(ctx)).To(Succeed())
		lease, err := leader.NewLease(gdb)
		Expect(err).NotTo(HaveOccurred())
		Expect(lease.Migrate(ctx)).To(Succeed())
		rec, err := lease.TryAcquire(ctx, "admin", "replica-a", time.Minute)
		Expect(err).NotTo(HaveOccurred())
		term := leader.Term{Election: "admin", Holder: "replica-a", Number: rec.Term}

		leaks := goleak.IgnoreCurrent()
		dir := GinkgoT().TempDir()
		write := func(content string) {
			tmp := filepath.Join(dir, ".order.yaml.tmp")
			Expect(os.WriteFile(tmp, []byte(content), 0o644)).To(Succeed())
			Expect(os.Rename(tmp, filepath.Join(dir, "order.yaml"))).To(Succeed())
		}
		keys := func() []string {
			k, err := sourcetest.Keys(context.Background(), st, discovery.KindInstance)
			Expect(err).NotTo(HaveOccurred())
			return k
		}
		write(orderV1)
		d := discovery.New(discovery.Config{URL: "file://" + dir}, st, discovery.Sources(), logr.Discard())
		Expect(d.Init(ctx)).To(Succeed())
		run := sourcetest.StartWithTerm(context.Background(), term, d.Start)
		DeferCleanup(func() { _ = run.Stop() })

		Eventually(keys).Should(Equal([]string{"shop-order/10.0.2.11:20880"}))
		r, err := st.Get(ctx, discovery.KindInstance, "shop-order/10.0.2.11:20880")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Term).To(Equal(term.Number))

		By("another replica taking the lease over")
		_, err = lease.ForceRelease(ctx, "admin")
		Expect(err).NotTo(HaveOccurred())
		_, err = lease.TryAcquire(ctx, "admin", "replica-b", time.Minute)
		Expect(err).NotTo(HaveOccurred())

		write(orderV2)
		Eventually(run.Done()).Should(BeClosed())
		Expect(run.Err()).To(MatchError(leader.ErrFenced))
		Expect(keys()).To(Equal([]string{"shop-order/10.0.2.11:20880"}), "no write of the old term landed")
		Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed())
	})
})
