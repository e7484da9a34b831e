package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/runtime/runtimetest"
)

// Generous bounds: they only decide how long a broken build takes to fail.
const (
	eventually   = 10 * time.Second
	consistently = 500 * time.Millisecond
)

// recorder keeps events in the order they happened, across goroutines.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// since returns the events after the n-th.
func (r *recorder) since(n int) []string { return r.all()[n:] }

func (r *recorder) count(e string) int {
	n := 0
	for _, x := range r.all() {
		if x == e {
			n++
		}
	}
	return n
}

// fakeElector is runtimetest.Elector recording its events in rec.
type fakeElector struct {
	*runtimetest.Elector
	rec *recorder
}

func newFakeElector(rec *recorder) *fakeElector {
	e := runtimetest.NewElector()
	e.OnEvent = rec.add
	return &fakeElector{Elector: e, rec: rec}
}

// grant lets the pending (or next) Campaign win.
func (f *fakeElector) grant() {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := f.Grant(ctx); err != nil {
		Fail("nobody campaigned")
	}
}

// lose ends the current term as a lost lease would.
func (f *fakeElector) lose() {
	f.rec.add("lost")
	f.Lose(leader.ErrLeaseLost)
}

// concurrency counts how many leader components run at once, across
// replicas.
type concurrency struct {
	cur, max atomic.Int32
}

func (c *concurrency) enter() {
	n := c.cur.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func (c *concurrency) exit() { c.cur.Add(-1) }

// probe is a leader component that runs until cancelled, recording each
// start (with its term and context) and each return.
type probe struct {
	name   string
	rec    *recorder
	shared *concurrency // across replicas; may be nil

	running atomic.Int32
	overlap atomic.Bool // a Start began before the previous one returned
	started chan leader.Term

	mu   sync.Mutex
	ctxs []context.Context
}

func newProbe(name string, rec *recorder, shared *concurrency) *probe {
	return &probe{name: name, rec: rec, shared: shared, started: make(chan leader.Term, 4096)}
}

func (p *probe) component() *runtime.FuncComponent {
	return runtime.LeaderComponentFunc(p.name, p.start)
}

func (p *probe) start(ctx context.Context) error {
	if p.running.Add(1) != 1 {
		p.overlap.Store(true)
	}
	if p.shared != nil {
		p.shared.enter()
	}
	term, ok := leader.TermFrom(ctx)
	if !ok {
		return errors.New("no term on the context")
	}
	p.mu.Lock()
	p.ctxs = append(p.ctxs, ctx)
	p.mu.Unlock()
	p.rec.add("start:" + p.name)
	p.started <- term
	<-ctx.Done()
	if p.shared != nil {
		p.shared.exit()
	}
	p.rec.add("return:" + p.name)
	p.running.Add(-1)
	return nil
}

func (p *probe) contexts() []context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ctxs)
}

// nextStart waits for the next Start of p and returns its term.
func (p *probe) nextStart() leader.Term {
	GinkgoHelper()
	select {
	case t := <-p.started:
		return t
	case <-time.After(eventually):
		Fail(fmt.Sprintf("%s did not start", p.name))
		return leader.Term{}
	}
}

// resetter records every Reset.
type resetter struct {
	rec   *recorder
	fails atomic.Int32 // fail this many calls first
}

func (r *resetter) Reset(context.Context) error {
	if r.fails.Add(-1) >= 0 {
		r.rec.add("reset-failed")
		return errors.New("reset failed")
	}
	r.rec.add("reset")
	return nil
}

func role(rt *runtime.Runtime) func() runtime.Role {
	return func() runtime.Role { return rt.Status().Role }
}

func componentStatus(rt *runtime.Runtime, name string) func() runtime.ComponentStatus {
	return func() runtime.ComponentStatus {
		for _, c := range rt.Status().Components {
			if c.Name == name {
				return c
			}
		}
		return runtime.ComponentStatus{}
	}
}

func withPrefix(events []string, prefix string) []string {
	var out []string
	for _, e := range events {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func stop(rt *runtime.Runtime) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	Expect(rt.Stop(ctx)).To(Succeed())
}

// indexOf is the position of the first e in events, or -1.
func indexOf(events []string, e string) int { return slices.Index(events, e) }

// newLeaseElector is the SQL lease elector of gdb, with the epochs of gdb.
func newLeaseElector(gdb *gorm.DB, cfg leader.Config, opts ...leader.Option) (*leader.LeaseElector, error) {
	epochs, err := leader.NewEpochs(gdb)
	if err != nil {
		return nil, err
	}
	return leader.NewLeaseElector(gdb, epochs, cfg, opts...)
}
