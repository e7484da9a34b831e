package heartbeat_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/examples/component/heartbeat"
	"github.com/apache/dubbo-admin/internal/testenv"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

func TestHeartbeat(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "examples/component/heartbeat")
}

// eventually only bounds how long a broken build takes to fail.
const eventually = 10 * time.Second

var leakBaseline goleak.Option

var _ = BeforeSuite(func() { leakBaseline = goleak.IgnoreCurrent() })

var _ = AfterSuite(func() {
	Expect(goleak.Find(leakBaseline)).To(Succeed(), "goroutines left running by the heartbeat suite")
})

var _ = Describe("Heartbeat on sqlite", Label("sqlite"), func() {
	var (
		db    *gorm.DB
		lease *leader.Lease
		st    *store.GORM
	)

	// A real SQLite file in a temporary directory, with the lease table and
	// the resources table: the same tables a replica uses.
	BeforeEach(func(ctx SpecContext) {
		tdb := dbtest.Ginkgo("examples/component/heartbeat", database.SQLite)
		var err error
		db, err = tdb.Open(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
		lease, err = leader.NewLease(db)
		Expect(err).NotTo(HaveOccurred())
		Expect(lease.Migrate(ctx)).To(Succeed())
		st, err = store.NewGORM(db)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Migrate(ctx)).To(Succeed())
	})

	// acquire takes the lease of election "hb" for holder and returns a
	// context carrying its term, as the runtime's term context would.
	acquire := func(ctx context.Context, holder string) (context.Context, leader.Term) {
		GinkgoHelper()
		rec, err := lease.TryAcquire(ctx, "hb", holder, time.Hour)
		Expect(err).NotTo(HaveOccurred())
		return leader.WithTerm(ctx, rec.TermOf()), rec.TermOf()
	}

	// takeOver makes holder the leader of "hb" whoever held it: the next term.
	takeOver := func(ctx context.Context, holder string) leader.Term {
		GinkgoHelper()
		_, err := lease.ForceRelease(ctx, "hb")
		Expect(err).NotTo(HaveOccurred())
		_, t := acquire(ctx, holder)
		return t
	}

	spec := func(r store.Resource) heartbeat.Spec {
		GinkgoHelper()
		var s heartbeat.Spec
		Expect(json.Unmarshal(r.Spec, &s)).To(Succeed())
		return s
	}

	newHeartbeat := func(interval time.Duration) *heartbeat.Heartbeat {
		GinkgoHelper()
		h := heartbeat.New(heartbeat.Config{Interval: interval}, st, GinkgoLogr)
		Expect(h.Init(context.Background())).To(Succeed())
		return h
	}

	It("is a leader-only component that checks its config in Init", func() {
		h := heartbeat.New(heartbeat.Config{}, st, GinkgoLogr)
		Expect(runtime.NeedsLeader(h)).To(BeTrue())
		Expect(h.Init(context.Background())).To(MatchError(ContainSubstring("must be positive")))
	})

	It("writes heartbeats that carry the writer's term", func(ctx SpecContext) {
		tctx, term := acquire(ctx, "replica-a")
		r, err := newHeartbeat(time.Hour).Beat(tctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Term).To(Equal(term.Number))
		Expect(spec(r)).To(HaveField("Holder", "replica-a"))

		stored, err := st.Get(ctx, heartbeat.Kind, "hb")
		Expect(err).NotTo(HaveOccurred())
		Expect(stored.Term).To(Equal(term.Number))
		Expect(stored.ResourceVersion).To(Equal(int64(1)))
	})

	It("cannot write once its term is lost: ErrFenced, and nothing changes", func(ctx SpecContext) {
		h := newHeartbeat(time.Hour)
		oldCtx, oldTerm := acquire(ctx, "replica-a")
		_, err := h.Beat(oldCtx)
		Expect(err).NotTo(HaveOccurred())

		newTerm := takeOver(ctx, "replica-b")
		Expect(newTerm.Number).To(BeNumerically(">", oldTerm.Number))

		// replica-a's context is still live (a paused process does not know
		// it lost): only the fence stops the write.
		_, err = h.Beat(oldCtx)
		Expect(err).To(MatchError(store.ErrFenced))
		stored, err := st.Get(ctx, heartbeat.Kind, "hb")
		Expect(err).NotTo(HaveOccurred())
		Expect(stored.Term).To(Equal(oldTerm.Number))
		Expect(stored.ResourceVersion).To(Equal(int64(1)))

		r, err := h.Beat(leader.WithTerm(ctx, newTerm))
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Term).To(Equal(newTerm.Number))
	})

	It("refuses to write without a term", func(ctx SpecContext) {
		_, err := newHeartbeat(time.Hour).Beat(ctx)
		Expect(err).To(MatchError(heartbeat.ErrNoTerm))
		// The store refuses such a write too, whoever makes it.
		_, err = st.Upsert(ctx, store.Resource{Kind: heartbeat.Kind, Key: "hb", Spec: []byte(`{}`)})
		Expect(err).To(MatchError(store.ErrNoTerm))
	})

	It("returns nil promptly when its term context is cancelled", func(ctx SpecContext) {
		tctx, _ := acquire(ctx, "replica-a")
		tctx, cancel := context.WithCancel(tctx)
		done := make(chan error, 1)
		go func() { done <- newHeartbeat(5 * time.Millisecond).Start(tctx) }()
		Eventually(func() (int64, error) {
			r, err := st.Get(ctx, heartbeat.Kind, "hb")
			return r.ResourceVersion, err
		}).WithTimeout(eventually).Should(BeNumerically(">=", 2))
		cancel()
		Eventually(done).WithTimeout(eventually).Should(Receive(BeNil()))
	})

	It("ends Start with ErrFenced when another holder took the term while ctx is still live", func(ctx SpecContext) {
		tctx, _ := acquire(ctx, "replica-a")
		done := make(chan error, 1)
		go func() { done <- newHeartbeat(5 * time.Millisecond).Start(tctx) }()
		Eventually(func() error { _, err := st.Get(ctx, heartbeat.Kind, "hb"); return err }).WithTimeout(eventually).Should(Succeed())
		takeOver(ctx, "replica-b")
		var err error
		Eventually(done).WithTimeout(eventually).Should(Receive(&err))
		Expect(err).To(MatchError(store.ErrFenced))
	})

	It("runs under the runtime with the leader's term and stops with it", func(ctx SpecContext) {
		epochs, err := leader.NewEpochs(db)
		Expect(err).NotTo(HaveOccurred())
		le, err := leader.NewLeaseElector(db, epochs, leader.Config{
			Name:          "hb",
			LeaseDuration: 2 * time.Second,
			RenewDeadline: 1500 * time.Millisecond,
			RetryPeriod:   200 * time.Millisecond,
			JitterFactor:  0.2,
			OpTimeout:     500 * time.Millisecond,
		}, leader.WithIdentity("replica-a"), leader.WithLogger(GinkgoLogr))
		Expect(err).NotTo(HaveOccurred())
		rt, err := runtime.New(GinkgoLogr, le, []runtime.Component{newHeartbeat(10 * time.Millisecond)}, runtime.Options{
			Resetter: st,
			FailStop: func(err error) { Fail(err.Error()) },
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(rt.Start(ctx)).To(Succeed())
		DeferCleanup(rt.Stop) // idempotent; stops it should the spec fail early

		// The heartbeat carries the term the runtime reports for this replica.
		Eventually(func() (int64, error) {
			r, err := st.Get(ctx, heartbeat.Kind, "hb")
			return r.Term, err
		}).WithTimeout(eventually).Should(BeNumerically(">", 0))
		r, err := st.Get(ctx, heartbeat.Kind, "hb")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Term).To(Equal(rt.Status().Term.Number))
		Expect(spec(r)).To(HaveField("Holder", "replica-a"))

		Expect(rt.Stop(ctx)).To(Succeed())
		st := rt.Status()
		Expect(st.Role).To(Equal(runtime.RoleStopped))
		Expect(st.Components).To(ConsistOf(And(HaveField("Name", heartbeat.Name), HaveField("State", runtime.ComponentStopped), HaveField("Restarts", 0))))
		rec, err := lease.Get(ctx, "hb")
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Held()).To(BeFalse(), "the lease is released on Stop")
	})
})
