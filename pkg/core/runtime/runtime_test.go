package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

var _ = Describe("Runtime with a fake elector", func() {
	var (
		rec     *recorder
		el      *fakeElector
		reset   *resetter
		a, b    *probe
		opts    runtime.Options
		stopped chan error
	)

	BeforeEach(func() {
		rec = &recorder{}
		el = newFakeElector(rec)
		reset = &resetter{rec: rec}
		a, b = newProbe("a", rec, nil), newProbe("b", rec, nil)
		stopped = make(chan error, 16)
		opts = runtime.Options{
			Resetter:     reset,
			DrainTimeout: 5 * time.Second,
			Backoff:      runtime.Backoff{Initial: 5 * time.Millisecond, Max: 40 * time.Millisecond, Factor: 2},
			FailStop:     func(err error) { stopped <- err },
		}
	})

	start := func(cs ...runtime.Component) *runtime.Runtime {
		GinkgoHelper()
		rt, err := runtime.New(GinkgoLogr, el, cs, opts)
		Expect(err).NotTo(HaveOccurred())
		Expect(rt.Start(context.Background())).To(Succeed())
		DeferCleanup(stop, rt)
		return rt
	}

	It("inits every component in order before campaigning, and runs the others at once", func() {
		comp := func(name string, order int, leaderOnly bool) runtime.Component {
			return &runtime.FuncComponent{
				ComponentName: name, Rank: order, LeaderOnly: leaderOnly,
				InitFunc: func(context.Context) error { rec.add("init:" + name); return nil },
				StartFunc: func(ctx context.Context) error {
					rec.add("start:" + name)
					<-ctx.Done()
					return nil
				},
			}
		}
		rt := start(comp("z-api", -1, false), comp("discovery", 0, true), comp("engine", 0, true), comp("first", -5, true))
		Expect(rt.Components()).To(HaveEach(Not(BeNil())))
		Eventually(rec.all).Should(ContainElement("start:z-api"))
		Expect(rec.all()[:4]).To(Equal([]string{"init:first", "init:z-api", "init:discovery", "init:engine"}))
		Eventually(rec.all).Should(ContainElement("campaign"))
		Consistently(rec.all, consistently).ShouldNot(ContainElement(HavePrefix("start:e")))
		Expect(role(rt)()).To(Equal(runtime.RoleCandidate))

		el.grant()
		Eventually(rec.all).Should(ContainElements("start:first", "start:discovery", "start:engine"))
		Expect(role(rt)()).To(Equal(runtime.RoleLeading))
	})

	It("refuses duplicate names and reports a failing Init by name", func() {
		_, err := runtime.New(GinkgoLogr, el, []runtime.Component{a.component(), a.component()}, opts)
		Expect(err).To(MatchError(runtime.ErrDuplicateComponent))

		bad := &runtime.FuncComponent{ComponentName: "bad", InitFunc: func(context.Context) error { return errors.New("no config") }}
		rt, err := runtime.New(GinkgoLogr, el, []runtime.Component{bad}, opts)
		Expect(err).NotTo(HaveOccurred())
		err = rt.Start(context.Background())
		Expect(err).To(MatchError(ContainSubstring(`init component "bad": no config`)))
		Expect(rec.all()).NotTo(ContainElement("campaign"))
		Expect(rt.Start(context.Background())).To(MatchError(runtime.ErrAlreadyStarted))
	})

	It("fails closed when the election cannot be prepared", func() {
		rt, err := runtime.New(GinkgoLogr, preparing{el, errors.New("table missing")}, []runtime.Component{a.component()}, opts)
		Expect(err).NotTo(HaveOccurred())
		err = rt.Start(context.Background())
		Expect(err).To(MatchError(runtime.ErrElectionSetup))
		Expect(err).To(MatchError(ContainSubstring("table missing")))
		Expect(rec.all()).To(BeEmpty())
	})

	It("starts leader components again with a new context and a new term after lose then regain", func() {
		rt := start(a.component(), b.component())
		el.grant()
		t1, _ := a.nextStart(), b.nextStart()
		Expect(rt.Status().Term).To(Equal(t1))

		el.lose()
		el.grant()
		t2, _ := a.nextStart(), b.nextStart()
		Expect(t2.Number).To(BeNumerically(">", t1.Number))
		ctxs := a.contexts()
		Expect(ctxs).To(HaveLen(2))
		Expect(ctxs[0].Err()).To(HaveOccurred())
		Expect(ctxs[1].Err()).NotTo(HaveOccurred())
		Expect(ctxs[1]).NotTo(BeIdenticalTo(ctxs[0]))
		Expect(a.overlap.Load() || b.overlap.Load()).To(BeFalse())
		Expect(withPrefix(rec.all(), "start:a")).To(HaveLen(2))
		Expect(rec.all()).To(ContainElement("return:a"))
	})

	It("on loss cancels, waits for every component, resets the store, then campaigns", func() {
		start(a.component(), b.component())
		el.grant()
		a.nextStart()
		b.nextStart()
		n := len(rec.all())

		el.lose()
		Eventually(func() []string { return rec.since(n) }).Should(HaveLen(5))
		got := rec.since(n)
		Expect(got[0]).To(Equal("lost"))
		Expect(got[1:3]).To(ConsistOf("return:a", "return:b"))
		Expect(got[3:]).To(Equal([]string{"reset", "campaign"}))
	})

	It("ends the term at once when a leader component's write is fenced, instead of restarting it", func() {
		fencedOnce := atomic.Bool{}
		writer := runtime.LeaderComponentFunc("writer", func(ctx context.Context) error {
			if fencedOnce.CompareAndSwap(false, true) {
				rec.add("fenced")
				return fmt.Errorf("upsert: %w", leader.ErrFenced)
			}
			<-ctx.Done()
			return nil
		})
		rt := start(a.component(), writer)
		el.grant()
		first := a.nextStart()
		Eventually(func() []string { return rec.all() }).Should(ContainElements("fenced", "return:a", "released", "reset"))
		events := rec.all()
		Expect(indexOf(events, "fenced")).To(BeNumerically("<", indexOf(events, "return:a")))
		Expect(indexOf(events, "return:a")).To(BeNumerically("<", indexOf(events, "released")), "the row is freed only after the term drained")
		Expect(indexOf(events, "released")).To(BeNumerically("<", indexOf(events, "reset")))
		Expect(componentStatus(rt, "writer")().Restarts).To(BeZero(), "a fenced write is the end of the term, not a failure")

		el.grant()
		Expect(a.nextStart().Number).To(BeNumerically(">", first.Number))
	})

	It("retries a failed reset before campaigning", func() {
		reset.fails.Store(2)
		start(a.component())
		el.grant()
		a.nextStart()
		n := len(rec.all())
		el.lose()
		Eventually(func() []string { return rec.since(n) }).Should(
			Equal([]string{"lost", "return:a", "reset-failed", "reset-failed", "reset", "campaign"}))
	})

	It("on shutdown waits for every component, then releases the lease last", func() {
		other := &runtime.FuncComponent{ComponentName: "api", StartFunc: func(ctx context.Context) error {
			<-ctx.Done()
			rec.add("return:api")
			return nil
		}}
		rt := start(a.component(), b.component(), other)
		el.grant()
		a.nextStart()
		b.nextStart()
		n := len(rec.all())

		stop(rt)
		got := rec.since(n)
		Expect(got).To(HaveLen(4))
		Expect(got[:2]).To(ConsistOf("return:a", "return:b"))
		Expect(got[2:]).To(Equal([]string{"released", "return:api"}))
		Expect(role(rt)()).To(Equal(runtime.RoleStopped))
		stop(rt) // idempotent
	})

	It("stops while Candidate, and Stop is idempotent", func() {
		rt := start(a.component())
		Eventually(rec.all).Should(ContainElement("campaign"))
		stop(rt)
		stop(rt)
		Expect(role(rt)()).To(Equal(runtime.RoleStopped))
		Expect(rec.all()).NotTo(ContainElement("start:a"))
		Expect(rt.Start(context.Background())).To(MatchError(runtime.ErrAlreadyStarted))
	})

	It("calls the fail-stop hook when a component ignores cancellation, and never campaigns while it runs", func() {
		opts.DrainTimeout = 100 * time.Millisecond
		release := make(chan struct{})
		stubborn := runtime.LeaderComponentFunc("stubborn", func(ctx context.Context) error {
			rec.add("start:stubborn")
			<-release
			rec.add("return:stubborn")
			return nil
		})
		rt := start(stubborn)
		el.grant()
		Eventually(rec.all).Should(ContainElement("start:stubborn"))

		el.lose()
		var err error
		Eventually(stopped, eventually).Should(Receive(&err))
		Expect(err).To(MatchError(runtime.ErrDrainTimeout))
		Expect(err).To(MatchError(ContainSubstring("stubborn")))
		Expect(role(rt)()).To(Equal(runtime.RoleDraining))
		Consistently(func() int { return rec.count("campaign") }, consistently).Should(Equal(1))

		close(release)
		Eventually(func() int { return rec.count("campaign") }).Should(Equal(2))
		Expect(rec.since(len(rec.all()) - 3)).To(Equal([]string{"return:stubborn", "reset", "campaign"}))
	})

	It("fail-stops before the lost term's lease could expire, even with a longer drain timeout", func() {
		opts.DrainTimeout = time.Hour // the lease bound must win
		el.ValidFor = 200 * time.Millisecond
		release := make(chan struct{})
		stubborn := runtime.LeaderComponentFunc("stubborn", func(ctx context.Context) error {
			rec.add("start:stubborn")
			<-release
			return nil
		})
		start(stubborn)
		DeferCleanup(func() { close(release) }) // before the stop that start deferred
		el.grant()
		Eventually(rec.all).Should(ContainElement("start:stubborn"))
		el.lose()
		var err error
		Eventually(stopped, eventually).Should(Receive(&err))
		Expect(err).To(MatchError(runtime.ErrDrainTimeout))
		Expect(err).To(MatchError(ContainSubstring("end of the lease as last renewed")))
	})

	It("backs off between terms that are fenced at once, instead of spinning", func() {
		opts.Backoff = runtime.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2}
		var starts atomic.Int32
		fenced := runtime.LeaderComponentFunc("fenced", func(context.Context) error {
			starts.Add(1)
			return fmt.Errorf("upsert: %w", leader.ErrFenced)
		})
		rt, err := runtime.New(GinkgoLogr, runtime.NewNoElection("solo", "me"), []runtime.Component{fenced}, opts)
		Expect(err).NotTo(HaveOccurred())
		Expect(rt.Start(context.Background())).To(Succeed())
		DeferCleanup(stop, rt)
		Eventually(starts.Load).Should(BeNumerically(">=", 2))
		Consistently(starts.Load, time.Second).Should(BeNumerically("<", 12), "100ms, 200ms, 400ms, ... between terms")
	})

	It("can be stopped while Draining", func() {
		opts.DrainTimeout = 50 * time.Millisecond
		release := make(chan struct{})
		stubborn := runtime.LeaderComponentFunc("stubborn", func(ctx context.Context) error {
			<-release
			return nil
		})
		rt := start(stubborn)
		el.grant()
		Eventually(componentStatus(rt, "stubborn")).Should(HaveField("State", runtime.ComponentRunning))
		el.lose()
		Eventually(stopped, eventually).Should(Receive())

		done := make(chan error, 1)
		go func() { done <- rt.Stop(context.Background()) }()
		Consistently(done, consistently).ShouldNot(Receive())
		close(release)
		Eventually(done, eventually).Should(Receive(Succeed()))
		Expect(role(rt)()).To(Equal(runtime.RoleStopped))
		Expect(rec.all()).NotTo(ContainElement("reset"))
		Expect(rec.count("campaign")).To(Equal(1))
	})

	It("restarts a failing component with backoff and shows it in the status", func() {
		var calls atomic.Int32
		flaky := runtime.LeaderComponentFunc("flaky", func(ctx context.Context) error {
			switch n := calls.Add(1); n {
			case 1, 2:
				return fmt.Errorf("boom %d", n)
			case 3:
				panic("kaboom")
			}
			<-ctx.Done()
			return ctx.Err()
		})
		rt := start(flaky)
		Expect(componentStatus(rt, "flaky")()).To(HaveField("State", runtime.ComponentPending))
		el.grant()
		Eventually(componentStatus(rt, "flaky")).Should(And(
			HaveField("State", runtime.ComponentRunning),
			HaveField("Restarts", 3),
			HaveField("Starts", 4),
			HaveField("LeaderOnly", true),
			HaveField("LastError", ContainSubstring("kaboom")),
		))
		Expect(componentStatus(rt, "flaky")().LastError).To(ContainSubstring(runtime.ErrPanic.Error()))

		stop(rt)
		Expect(componentStatus(rt, "flaky")()).To(HaveField("State", runtime.ComponentStopped))
	})

	It("tells subscribers of every role change and closes their channels on stop", func() {
		rt := start(a.component())
		Eventually(rec.all).Should(ContainElement("campaign"))
		ch := rt.Subscribe(context.Background())
		el.grant()
		a.nextStart()
		el.lose()
		el.grant()
		a.nextStart()
		stop(rt)

		var got []runtime.Role
		for c := range ch {
			got = append(got, c.To)
		}
		Expect(got).To(Equal([]runtime.Role{
			runtime.RoleLeading, runtime.RoleDraining, runtime.RoleCandidate,
			runtime.RoleLeading, runtime.RoleDraining, runtime.RoleStopped,
		}))

		closed := rt.Subscribe(context.Background())
		Expect(closed).To(BeClosed())
	})

	It("drops a slow subscriber's oldest changes rather than block", func() {
		rt := start(a.component())
		ctx, cancel := context.WithCancel(context.Background())
		ch := rt.Subscribe(ctx)
		for range runtime.SubscriberBuffer {
			el.grant()
			a.nextStart()
			el.lose()
		}
		el.grant()
		a.nextStart()
		Expect(ch).To(HaveLen(runtime.SubscriberBuffer))
		first := <-ch
		Expect(first.Seq).To(BeNumerically(">", 2))
		cancel()
		Eventually(func() bool {
			for range ch {
			}
			return true
		}).Should(BeTrue())
	})

	It("leaves no goroutine behind after 1000 lose/regain cycles", func() {
		leaks := goleak.IgnoreCurrent()
		rt := start(a.component(), b.component())
		for range 1000 {
			el.grant()
			a.nextStart()
			b.nextStart()
			el.lose()
		}
		Expect(a.overlap.Load() || b.overlap.Load()).To(BeFalse())
		Eventually(func() int { return rec.count("reset") }).Should(Equal(1000))
		stop(rt)
		goleak.VerifyNone(GinkgoT(), leaks)
	})
})

var _ = Describe("NoElection", func() {
	It("leads at once with a fixed term until stopped", func() {
		rec := &recorder{}
		p := newProbe("solo", rec, nil)
		rt, err := runtime.New(GinkgoLogr, runtime.NewNoElection("solo", "me"), []runtime.Component{p.component()}, runtime.Options{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rt.Start(context.Background())).To(Succeed())
		t := p.nextStart()
		Expect(t).To(Equal(leader.Term{Election: "solo", Holder: "me", Number: 1}))
		st := rt.Status()
		Expect(st.Role).To(Equal(runtime.RoleLeading))
		Expect(st.Leader).To(Equal("me"))
		stop(rt)
		Expect(rec.all()).To(Equal([]string{"start:solo", "return:solo"}))
	})
})

var _ = Describe("Backoff", func() {
	It("grows by its factor up to its cap", func() {
		b := runtime.Backoff{Initial: 10 * time.Millisecond, Max: 70 * time.Millisecond, Factor: 2}
		var got []time.Duration
		for i := range 6 {
			got = append(got, b.Delay(i))
		}
		Expect(got).To(Equal([]time.Duration{10e6, 20e6, 40e6, 70e6, 70e6, 70e6}))
		Expect(b.Validate()).To(Succeed())
		Expect(runtime.Backoff{Initial: time.Second, Max: time.Millisecond, Factor: 2}.Validate()).To(MatchError(runtime.ErrInvalidOptions))
		Expect(runtime.DefaultBackoff().Validate()).To(Succeed())
	})
})

// preparing is an elector whose Prepare fails.
type preparing struct {
	leader.Elector
	err error
}

func (p preparing) Prepare(context.Context) error { return p.err }
