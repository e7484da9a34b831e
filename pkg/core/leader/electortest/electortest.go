// Package electortest is the conformance suite of leader.Elector: the specs
// every election backend passes, whatever it elects with (the SQL lease on
// each dialect, etcd, Kubernetes Leases). A backend's test package declares
// them inside its own container, after setting up its server:
//
//	var _ = Describe("Elector on etcd", Ordered, func() {
//		var b electortest.Backend
//		BeforeAll(func() { b = ... })
//		electortest.Specs(func() electortest.Backend { return b })
//	})
//
// The specs check the contract of SEAM: one leader at a time among many
// contenders, with strictly increasing minted terms; the term context
// carries the Term and ends before any other candidate leads (on Resign, on
// loss of the backend, on force release); Leader and Observed name the
// leader; hostile election names and identities are stored exactly or
// rejected with leader.ErrInvalidConfig; no goroutine outlives a spec.
package electortest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Backend is what a backend gives the suite.
type Backend struct {
	// New returns a fresh candidate of election with identity (the
	// backend's default identity when it is ""), as a separate replica
	// would have it: its own connections to the backend. It registers
	// whatever must be closed with DeferCleanup. An error means the backend
	// rejects the election name or identity.
	New func(ctx context.Context, election, identity string) (leader.Elector, error)
	// NewCuttable is New for a candidate whose connection to the backend
	// cut severs (nothing flows in either direction, as behind a network
	// partition) until heal. It may cut other candidates off too (SQLite
	// has no network: it holds the database's write lock). Nil skips the
	// spec that needs it.
	NewCuttable func(ctx context.Context, election string) (e leader.Elector, cut, heal func())
}

var electionSeq struct {
	sync.Mutex
	n int
}

// Election returns a fresh election name with prefix, unique in the process.
func Election(prefix string) string {
	electionSeq.Lock()
	defer electionSeq.Unlock()
	electionSeq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, electionSeq.n)
}

// Won is the outcome of one Campaign: the Leadership and the instant
// Campaign returned.
type Won struct {
	L  leader.Leadership
	At time.Time
}

// Campaign runs e.Campaign on its own goroutine, on a child of ctx that is
// cancelled at cleanup; the cleanup also waits for the goroutine. The
// channel yields the win, or is closed without one when the campaign ended.
func Campaign(ctx context.Context, e leader.Elector) <-chan Won {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan Won, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		l, err := e.Campaign(ctx)
		if err == nil {
			out <- Won{l, time.Now()}
		}
	}()
	DeferCleanup(func() { cancel(); wg.Wait() })
	return out
}

// Specs declares the conformance specs in the calling container. backend is
// called at the start of every spec, after the caller's setup nodes ran.
func Specs(backend func() Backend) {
	var b Backend

	BeforeEach(func() {
		leaks := goleak.IgnoreCurrent()
		DeferCleanup(func() {
			Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed(), "every goroutine of the spec returned")
		})
		b = backend()
	})

	candidate := func(ctx context.Context, election, identity string) leader.Elector {
		GinkgoHelper()
		e, err := b.New(ctx, election, identity)
		Expect(err).NotTo(HaveOccurred())
		Expect(e.Prepare(ctx)).To(Succeed())
		return e
	}
	win := func(ch <-chan Won) Won {
		GinkgoHelper()
		var w Won
		Eventually(ch).Should(Receive(&w))
		return w
	}

	It("lets exactly one of 8 contenders lead at a time over 30 terms, with strictly increasing terms", func(ctx SpecContext) {
		const contenders, terms = 8, 30
		name := Election("rounds")
		electors := make([]leader.Elector, contenders)
		for i := range electors {
			electors[i] = candidate(ctx, name, fmt.Sprintf("contender-%d", i))
		}
		cctx, stop := context.WithCancel(ctx)
		defer stop()
		var (
			mu         sync.Mutex
			current    leader.Leadership
			numbers    []int64
			violations []string
		)
		var wg sync.WaitGroup
		for _, e := range electors {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for {
					l, err := e.Campaign(cctx)
					if err != nil {
						return
					}
					t := l.Term()
					mu.Lock()
					if current != nil && current.Context().Err() == nil {
						violations = append(violations, fmt.Sprintf("%s won term %d while %s still led term %d", t.Holder, t.Number, current.Term().Holder, current.Term().Number))
					}
					if n := len(numbers); n > 0 && t.Number <= numbers[n-1] {
						violations = append(violations, fmt.Sprintf("term %d after term %d", t.Number, numbers[n-1]))
					}
					if carried, ok := leader.TermFrom(l.Context()); !ok || carried != t {
						violations = append(violations, fmt.Sprintf("term context carries %v, want %v", carried, t))
					}
					if t.Holder != e.Identity() {
						violations = append(violations, fmt.Sprintf("term holder %q, want %q", t.Holder, e.Identity()))
					}
					current = l // Resign cancels its context before it frees the election
					numbers = append(numbers, t.Number)
					enough := len(numbers) >= terms
					mu.Unlock()

					// The term's work: read the leader, which must be this candidate.
					if rec, err := e.Leader(ctx); (err != nil || rec.Holder != t.Holder) && l.Context().Err() == nil {
						mu.Lock()
						violations = append(violations, fmt.Sprintf("term %d of %s: Leader read %q (%v)", t.Number, t.Holder, rec.Holder, err))
						mu.Unlock()
					}
					if err := l.Resign(ctx); err != nil {
						mu.Lock()
						violations = append(violations, fmt.Sprintf("resign term %d: %v", t.Number, err))
						mu.Unlock()
					}
					<-l.Done()
					if enough {
						stop()
					}
				}
			}()
		}
		wg.Wait()
		Expect(violations).To(BeEmpty())
		Expect(len(numbers)).To(BeNumerically(">=", terms))
	})

	It("hands over to a follower when the leader resigns, with a higher term", func(ctx SpecContext) {
		name := Election("handover")
		a, b := candidate(ctx, name, ""), candidate(ctx, name, "")
		wa := win(Campaign(ctx, a))
		carried, ok := leader.TermFrom(wa.L.Context())
		Expect(ok).To(BeTrue(), "the term context carries the term")
		Expect(carried).To(Equal(wa.L.Term()))
		Expect(wa.L.Term().Holder).To(Equal(a.Identity()))
		Expect(wa.L.Term().Election).To(Equal(name))
		Expect(wa.L.ValidUntil()).To(BeTemporally(">", time.Now()))

		bwins := Campaign(ctx, b)
		Consistently(bwins, "500ms").ShouldNot(Receive(), "a live leader is not replaced")
		Expect(wa.L.Context().Err()).NotTo(HaveOccurred())
		Expect(wa.L.Resign(ctx)).To(Succeed())
		Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrResigned))
		Eventually(wa.L.Done()).Should(BeClosed())
		wb := win(bwins)
		Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(b.Observed().Holder).To(Equal(b.Identity()))
		Expect(wb.L.Resign(ctx)).To(Succeed())
		Expect(wb.L.Resign(ctx)).To(Succeed(), "resign is idempotent")
		Expect(wa.L.Resign(ctx)).To(Succeed(), "resign is idempotent")
	})

	It("gives a new, higher term when a leader resigns and campaigns again", func(ctx SpecContext) {
		a := candidate(ctx, Election("again"), "")
		first := win(Campaign(ctx, a))
		Expect(first.L.Resign(ctx)).To(Succeed())
		second := win(Campaign(ctx, a))
		Expect(second.L.Term().Number).To(BeNumerically(">", first.L.Term().Number))
		Expect(second.L.Term().Holder).To(Equal(a.Identity()))
		Expect(second.L.Resign(ctx)).To(Succeed())
	})

	It("names the leader through Leader and Observed on every candidate", func(ctx SpecContext) {
		name := Election("observe")
		a, b := candidate(ctx, name, "observed-a"), candidate(ctx, name, "observed-b")
		none, err := a.Leader(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(none.Held()).To(BeFalse(), "a never-used election has no leader")
		wa := win(Campaign(ctx, a))
		Campaign(ctx, b)
		for _, e := range []leader.Elector{a, b} {
			rec, err := e.Leader(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(rec.Election).To(Equal(name))
			Expect(rec.Holder).To(Equal(a.Identity()))
			Expect(rec.Term).To(Equal(wa.L.Term().Number))
			Expect(rec.Held()).To(BeTrue())
		}
		Eventually(func() string { return b.Observed().Holder }).Should(Equal(a.Identity()))
		Expect(a.Observed().Holder).To(Equal(a.Identity()))
		rec, err := b.Leader(ctx)
		Expect(err).NotTo(HaveOccurred())
		if rec.Candidates != nil {
			Eventually(func() ([]string, error) {
				rec, err := b.Leader(ctx)
				return rec.Candidates, err
			}).Should(Equal([]string{a.Identity(), b.Identity()}), "candidates in queue order, the leader first")
		}
		Expect(wa.L.Resign(ctx)).To(Succeed())
	})

	It("ends the term of a leader cut off from the backend before another candidate leads", func(ctx SpecContext) {
		if b.NewCuttable == nil {
			Skip("the backend cannot cut a candidate off")
		}
		name := Election("cut")
		a, cut, heal := b.NewCuttable(ctx, name)
		Expect(a.Prepare(ctx)).To(Succeed())
		other := candidate(ctx, name, "")
		wa := win(Campaign(ctx, a))
		var ended time.Time
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			<-wa.L.Context().Done()
			ended = time.Now()
		}()
		owins := Campaign(ctx, other)

		cut()
		healed := false
		defer func() {
			if !healed {
				heal()
			}
		}()
		Eventually(watched).Should(BeClosed())
		Expect(context.Cause(wa.L.Context())).NotTo(MatchError(leader.ErrResigned))
		heal()
		healed = true
		wo := win(owins)
		Expect(ended.Before(wo.At)).To(BeTrue(), "term ended at %v, successor led at %v", ended, wo.At)
		Expect(wo.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Eventually(wa.L.Done()).Should(BeClosed())
		Expect(wa.L.Resign(ctx)).To(Succeed(), "resigning a lost term is not an error")
		Expect(wo.L.Resign(ctx)).To(Succeed())
	})

	It("ends the term when an operator force-releases it, and lets another candidate lead", func(ctx SpecContext) {
		name := Election("force")
		a, other := candidate(ctx, name, ""), candidate(ctx, name, "")
		fr, ok := other.(leader.ForceReleaser)
		if !ok {
			Skip("the backend has no force release")
		}
		wa := win(Campaign(ctx, a))
		owins := Campaign(ctx, other)
		before, err := fr.ForceRelease(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(before.Holder).To(Equal(a.Identity()), "force release returns the leader it removed")
		Eventually(wa.L.Context().Done()).Should(BeClosed())
		Expect(context.Cause(wa.L.Context())).NotTo(MatchError(leader.ErrResigned))
		wo := win(owins)
		Expect(wo.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(wa.L.Resign(ctx)).To(Succeed())
		Expect(wo.L.Resign(ctx)).To(Succeed())
	})

	It("ends a campaign with the context's cause", func(ctx SpecContext) {
		name := Election("cancel")
		a, other := candidate(ctx, name, ""), candidate(ctx, name, "")
		wa := win(Campaign(ctx, a))
		cctx, cancel := context.WithCancelCause(ctx)
		done := make(chan error, 1)
		go func() { _, err := other.Campaign(cctx); done <- err }()
		Consistently(done, "300ms").ShouldNot(Receive())
		stop := errors.New("shutting down")
		cancel(stop)
		Eventually(done).Should(Receive(MatchError(stop)))
		Expect(wa.L.Context().Err()).NotTo(HaveOccurred(), "a follower giving up does not disturb the leader")
		Expect(wa.L.Resign(ctx)).To(Succeed())
	})

	It("stores hostile election names and identities exactly, keeps look-alike names apart, and rejects oversized ones", func(ctx SpecContext) {
		suffix := Election("")
		// lead wins election name as identity and checks what another
		// candidate reads back.
		lead := func(name, identity string) leader.Leadership {
			GinkgoHelper()
			w := win(Campaign(ctx, candidate(ctx, name, identity)))
			Expect(w.L.Term().Election).To(Equal(name))
			Expect(w.L.Term().Holder).To(Equal(identity))
			rec, err := candidate(ctx, name, "").Leader(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(rec.Election).To(Equal(name))
			Expect(rec.Holder).To(Equal(identity))
			Expect(rec.Term).To(Equal(w.L.Term().Number))
			return w.L
		}
		for i, name := range []string{`'; DROP TABLE leader_leases; --` + suffix, `"quoted" \ back` + suffix, "选举-élection-🗳" + suffix,
			strings.Repeat("ü", leader.MaxNameLength), "*" + suffix, "a b" + suffix} {
			Expect(lead(name, fmt.Sprintf(`holder '%d"; -- /\ 选`, i)).Resign(ctx)).To(Succeed())
		}
		// Look-alike names are separate elections: all of them lead at once.
		var held []leader.Leadership
		for i, n := range []string{"a", "a/b", "a/", "../a", "a%2Fb", "case", "CASE"} {
			held = append(held, lead(n+suffix, fmt.Sprintf("look-alike-%d", i)))
		}
		for _, l := range held {
			Expect(l.Context().Err()).NotTo(HaveOccurred(), "%q still leads (%v)", l.Term().Election, context.Cause(l.Context()))
			Expect(l.Resign(ctx)).To(Succeed())
		}

		rejected := func(election, identity string) error {
			e, err := b.New(ctx, election, identity)
			if err == nil {
				err = e.Prepare(ctx)
			}
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				var l leader.Leadership
				if l, err = e.Campaign(cctx); err == nil {
					_ = l.Resign(ctx)
				}
			}
			return err
		}
		Expect(rejected(strings.Repeat("x", 10<<10), "")).To(MatchError(leader.ErrInvalidConfig))
		Expect(rejected(Election("long-holder"), strings.Repeat("h", 10<<10))).To(MatchError(leader.ErrInvalidConfig))
		Expect(rejected("", "")).To(MatchError(leader.ErrInvalidConfig))
	})
}
