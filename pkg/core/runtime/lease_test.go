package runtime_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// fastConfig is a leader config with test timings.
func fastConfig() leader.Config {
	return leader.Config{
		Name:          "runtime-test",
		LeaseDuration: 600 * time.Millisecond,
		RenewDeadline: 400 * time.Millisecond,
		RetryPeriod:   50 * time.Millisecond,
		JitterFactor:  0.2,
		OpTimeout:     100 * time.Millisecond,
	}
}

var _ = It("uses test timings that pass leader.Config.Validate", func() {
	Expect(fastConfig().Validate()).To(Succeed())
})

// replica is one runtime on its own connection pool, as one process would be.
type replica struct {
	id    string
	db    *gorm.DB
	rt    *runtime.Runtime
	le    *leader.LeaseElector
	probe *probe
}

func (r *replica) leading() bool { return r.rt.Status().Role == runtime.RoleLeading }

var _ = func() bool {
	for _, dialect := range dbtest.Dialects {
		Describe("Runtime with the lease elector on "+dialect, Label(dialect), func() { leaseSpecs(dialect) })
	}
	return true
}()

func leaseSpecs(dialect string) {
	var (
		db     *dbtest.DB
		rec    *recorder
		shared *concurrency
		reset  *resetter
	)

	BeforeEach(func() {
		db = dbtest.Ginkgo("pkg/core/runtime", dialect)
		rec, shared = &recorder{}, &concurrency{}
		reset = &resetter{rec: rec}
	})

	newReplica := func(id string) *replica {
		GinkgoHelper()
		ctx, cancel := context.WithTimeout(context.Background(), eventually)
		defer cancel()
		gdb, err := db.Open(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = database.Close(gdb) })
		le, err := newLeaseElector(gdb, fastConfig(), leader.WithIdentity(id), leader.WithLogger(GinkgoLogr.WithValues("replica", id)))
		Expect(err).NotTo(HaveOccurred())
		p := newProbe("probe", rec, shared)
		rt, err := runtime.New(GinkgoLogr.WithValues("replica", id), le, []runtime.Component{p.component()}, runtime.Options{
			Resetter:     reset,
			DrainTimeout: 5 * time.Second,
			Backoff:      runtime.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2},
			FailStop:     func(err error) { Fail(err.Error()) },
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(rt.Start(ctx)).To(Succeed())
		DeferCleanup(stop, rt)
		return &replica{id: id, db: gdb, rt: rt, le: le, probe: p}
	}

	leaders := func(rs ...*replica) func() []string {
		return func() []string {
			var ids []string
			for _, r := range rs {
				if r.leading() {
					ids = append(ids, r.id)
				}
			}
			return ids
		}
	}

	It("runs leader components on exactly one of three replicas, through graceful handovers", func() {
		rs := []*replica{newReplica("r0"), newReplica("r1"), newReplica("r2")}
		Eventually(leaders(rs...), eventually).Should(HaveLen(1))
		Consistently(leaders(rs...), consistently).Should(HaveLen(1))

		live := rs
		for range 2 {
			var next []*replica
			for _, r := range live {
				if r.leading() {
					stop(r.rt)
				} else {
					next = append(next, r)
				}
			}
			Expect(next).To(HaveLen(len(live) - 1))
			live = next
			Eventually(leaders(live...), eventually).Should(HaveLen(1))
			Consistently(func() int32 { return shared.cur.Load() }, consistently).Should(BeNumerically("<=", 1))
		}
		Expect(shared.max.Load()).To(Equal(int32(1)))
		for _, r := range rs {
			Expect(r.probe.overlap.Load()).To(BeFalse())
		}
	})

	It("never runs leader components on two replicas when the leader loses its database", func() {
		rs := []*replica{newReplica("r0"), newReplica("r1"), newReplica("r2")}
		Eventually(leaders(rs...), eventually).Should(HaveLen(1))
		var cut *replica
		for _, r := range rs {
			if r.leading() {
				cut = r
			}
		}
		Expect(database.Close(cut.db)).To(Succeed())

		Eventually(func() runtime.Role { return cut.rt.Status().Role }, eventually).Should(Equal(runtime.RoleCandidate))
		Eventually(leaders(rs...), eventually).Should(HaveLen(1))
		Expect(leaders(rs...)()).NotTo(ContainElement(cut.id))
		// Leading is recorded just before the components' goroutines start.
		Eventually(func() int32 { return shared.cur.Load() }, eventually).Should(Equal(int32(1)))
		// At most one: on a loaded machine the new leader may itself miss
		// its (fast) renew deadline and step down, which is correct.
		Consistently(func() int32 { return shared.cur.Load() }, consistently).Should(BeNumerically("<=", 1))
		Expect(shared.max.Load()).To(Equal(int32(1)))
		Expect(cut.probe.overlap.Load()).To(BeFalse())
	})

	It("releases the lease on graceful stop so that a follower takes over", func() {
		r0 := newReplica("r0")
		Eventually(leaders(r0), eventually).Should(Equal([]string{"r0"}))
		r1 := newReplica("r1")
		Eventually(func() string { return r1.rt.Status().Leader }, eventually).Should(Equal("r0"))
		t0 := r0.rt.Status().Term

		stop(r0.rt)
		rec0, err := r0.le.Lease().Get(context.Background(), fastConfig().Name)
		Expect(err).NotTo(HaveOccurred())
		if rec0.Holder != "" { // r1 may already have taken it
			Expect(rec0.Holder).To(Equal("r1"))
		}
		Eventually(leaders(r1), eventually).Should(Equal([]string{"r1"}))
		Expect(r1.rt.Status().Term.Number).To(BeNumerically(">", t0.Number))
		Expect(shared.max.Load()).To(Equal(int32(1)))
	})

	It("after losing the lease, drains, resets and leads again with a new term and context", func() {
		r0 := newReplica("r0")
		t1 := r0.probe.nextStart()
		n := len(rec.all())

		_, err := r0.le.Lease().ForceRelease(context.Background(), fastConfig().Name)
		Expect(err).NotTo(HaveOccurred())
		t2 := r0.probe.nextStart()
		Expect(t2.Number).To(BeNumerically(">", t1.Number))
		Expect(rec.since(n)).To(Equal([]string{"return:probe", "reset", "start:probe"}))
		ctxs := r0.probe.contexts()
		Expect(ctxs).To(HaveLen(2))
		Expect(ctxs[0].Err()).To(HaveOccurred())
		Expect(ctxs[1].Err()).NotTo(HaveOccurred())
		Expect(r0.probe.overlap.Load()).To(BeFalse())
	})

	It("fails to start when the lease table cannot be created", func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventually)
		defer cancel()
		gdb, err := db.Open(ctx)
		Expect(err).NotTo(HaveOccurred())
		le, err := newLeaseElector(gdb, fastConfig())
		Expect(err).NotTo(HaveOccurred())
		Expect(database.Close(gdb)).To(Succeed())
		p := newProbe("probe", rec, nil)
		rt, err := runtime.New(GinkgoLogr, le, []runtime.Component{p.component()}, runtime.Options{})
		Expect(err).NotTo(HaveOccurred())
		err = rt.Start(ctx)
		Expect(err).To(MatchError(runtime.ErrElectionSetup))
		Expect(err).To(MatchError(ContainSubstring("leader_leases")))
		Expect(rt.Status().Role).To(Equal(runtime.RoleNotStarted))
		Expect(rt.Stop(ctx)).To(Succeed())
	})
}
