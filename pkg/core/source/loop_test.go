package source_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

const kind = "Thing"

// fakeSource is an upstream whose state and change feed the spec controls.
type fakeSource struct {
	mu      sync.Mutex
	state   map[string]store.Resource
	changes chan source.Change
	opened  atomic.Int32
	stopped atomic.Int32
	failure error
}

func newFakeSource() *fakeSource {
	return &fakeSource{state: map[string]store.Resource{}, changes: make(chan source.Change, 64)}
}

func thing(key, value string) store.Resource {
	return store.Resource{Kind: kind, Key: key, Spec: []byte(fmt.Sprintf(`{"value":%q}`, value))}
}

// set changes the upstream; emit says whether the watch reports it.
func (f *fakeSource) set(r store.Resource, emit bool) {
	f.mu.Lock()
	f.state[r.Key] = r
	f.mu.Unlock()
	if emit {
		f.changes <- source.Upsert(r)
	}
}

func (f *fakeSource) remove(key string, emit bool) {
	f.mu.Lock()
	delete(f.state, key)
	f.mu.Unlock()
	if emit {
		f.changes <- source.Delete(kind, key)
	}
}

// fail ends the watch as a broken connection would.
func (f *fakeSource) fail(err error) {
	f.mu.Lock()
	f.failure = err
	f.mu.Unlock()
	close(f.changes)
}

func (f *fakeSource) open(context.Context) (source.Source, error) {
	f.opened.Add(1)
	return (*fakeTerm)(f), nil
}

// fakeTerm is the per-term handle the loop gets.
type fakeTerm fakeSource

func (t *fakeTerm) Watch(context.Context) (<-chan source.Change, error) { return t.changes, nil }

func (t *fakeTerm) List(context.Context) ([]store.Resource, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []store.Resource
	for _, r := range t.state {
		out = append(out, r)
	}
	return out, nil
}

func (t *fakeTerm) Stop() error {
	t.stopped.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failure
}

// fencingStore refuses writes once fenced is set, as a store does when the
// term's lease is gone.
type fencingStore struct {
	store.ResourceStore
	fenced atomic.Bool
}

func (s *fencingStore) Upsert(ctx context.Context, r store.Resource) (store.Resource, error) {
	if s.fenced.Load() {
		return store.Resource{}, fmt.Errorf("upsert %s: %w", r.Key, store.ErrFenced)
	}
	return s.ResourceStore.Upsert(ctx, r)
}

func (s *fencingStore) Apply(ctx context.Context, changes []store.Change) (store.ReplaceResult, error) {
	if s.fenced.Load() {
		return store.ReplaceResult{}, fmt.Errorf("apply %d changes: %w", len(changes), store.ErrFenced)
	}
	return s.ResourceStore.Apply(ctx, changes)
}

var _ = Describe("Loop", func() {
	var (
		ctx   context.Context
		st    *fencingStore
		src   *fakeSource
		loop  *source.Loop
		leaks goleak.Option
	)

	BeforeEach(func() {
		leaks = goleak.IgnoreCurrent()
		ctx = context.Background()
		st = &fencingStore{ResourceStore: store.NewMemory()}
		src = newFakeSource()
		loop = &source.Loop{
			Name:  "test",
			Open:  src.open,
			View:  func() source.View { return source.Identity(kind) },
			Store: st,
			Log:   logr.Discard(),
		}
		DeferCleanup(func() {
			Eventually(func() error { return goleak.Find(leaks) }).WithTimeout(30 * time.Second).Should(Succeed())
		})
	})

	values := func() map[string]any {
		specs, err := sourcetest.Specs(ctx, st, kind)
		Expect(err).NotTo(HaveOccurred())
		out := map[string]any{}
		for k, v := range specs {
			out[k] = v.(map[string]any)["value"]
		}
		return out
	}

	It("replaces the kind with the list, then applies each change", func() {
		_, err := st.Upsert(store.Unfenced(ctx), thing("stale", "left by an earlier term"))
		Expect(err).NotTo(HaveOccurred())
		src.set(thing("a", "1"), false)
		src.set(thing("b", "1"), false)

		term := startTerm(loop.Run)
		Eventually(values).Should(Equal(map[string]any{"a": "1", "b": "1"}))

		src.set(thing("a", "2"), true)
		src.set(thing("c", "1"), true)
		src.remove("b", true)
		Eventually(values).Should(Equal(map[string]any{"a": "2", "c": "1"}))

		Expect(term.Stop()).To(Succeed())
		Expect(src.stopped.Load()).To(BeEquivalentTo(1))
	})

	It("stamps its writes with the term it was started with", func() {
		src.set(thing("a", "1"), false)
		term := startTerm(loop.Run)
		Eventually(values).Should(HaveKey("a"))
		src.set(thing("b", "1"), true)
		Eventually(values).Should(HaveKey("b"))
		Expect(term.Stop()).To(Succeed())
		for _, key := range []string{"a", "b"} {
			r, err := st.Get(ctx, kind, key)
			Expect(err).NotTo(HaveOccurred())
			Expect(r.Term).To(BeNumerically(">", 0), "%s was written without the term", key)
		}
	})

	It("relists on the resync period, catching what the watch missed", func() {
		loop.Resync = 20 * time.Millisecond
		term := startTerm(loop.Run)
		Eventually(values).Should(BeEmpty())
		src.set(thing("missed", "1"), false)
		Eventually(values).Should(Equal(map[string]any{"missed": "1"}))
		src.remove("missed", false)
		Eventually(values).Should(BeEmpty())
		Expect(term.Stop()).To(Succeed())
	})

	It("lists anew on every term and picks up what changed in between", func() {
		src.set(thing("a", "1"), false)
		first := startTerm(loop.Run)
		Eventually(values).Should(Equal(map[string]any{"a": "1"}))
		Expect(first.Stop()).To(Succeed())

		src.set(thing("a", "2"), false)
		src.set(thing("b", "1"), false)
		// Another replica's term may have left its own view behind.
		_, err := st.Upsert(store.Unfenced(ctx), thing("ghost", "x"))
		Expect(err).NotTo(HaveOccurred())

		second := startTerm(loop.Run)
		Eventually(values).Should(Equal(map[string]any{"a": "2", "b": "1"}))
		Expect(second.Stop()).To(Succeed())
		Expect(src.opened.Load()).To(BeEquivalentTo(2))
		Expect(src.stopped.Load()).To(BeEquivalentTo(2))
	})

	It("stops and returns ErrFenced when the store refuses a write", func() {
		term := startTerm(loop.Run)
		src.set(thing("a", "1"), true)
		Eventually(values).Should(HaveKey("a"))

		st.fenced.Store(true)
		src.set(thing("b", "1"), true)
		Eventually(term.Done()).Should(BeClosed())
		Expect(term.Err()).To(MatchError(leader.ErrFenced))
		Expect(src.stopped.Load()).To(BeEquivalentTo(1))
		Expect(values()).NotTo(HaveKey("b"))
	})

	It("fails with the source's error when the watch ends while leading", func() {
		term := startTerm(loop.Run)
		Eventually(src.opened.Load).Should(BeEquivalentTo(1))
		broken := errors.New("connection reset")
		src.fail(broken)
		Eventually(term.Done()).Should(BeClosed())
		Expect(term.Err()).To(MatchError(broken))
	})

	It("refuses a source reporting a kind its view does not write", func() {
		src.set(store.Resource{Kind: "Other", Key: "x", Spec: []byte(`{}`)}, false)
		term := startTerm(loop.Run)
		Eventually(term.Done()).Should(BeClosed())
		Expect(term.Err()).To(MatchError(ContainSubstring(`kind "Other"`)))
	})
})

// gatedStore holds every Apply until the spec opens the gate, and reports
// the size of each batch it was handed.
type gatedStore struct {
	store.ResourceStore
	gate  chan struct{}
	sizes chan int
}

func (s *gatedStore) Apply(ctx context.Context, changes []store.Change) (store.ReplaceResult, error) {
	s.sizes <- len(changes)
	select {
	case <-s.gate:
	case <-ctx.Done():
		return store.ReplaceResult{}, ctx.Err()
	}
	return s.ResourceStore.Apply(ctx, changes)
}

var _ = Describe("Loop writing batches", func() {
	It("keeps taking changes while a batch is being written, and writes them as the next batch", func() {
		leaks := goleak.IgnoreCurrent()
		DeferCleanup(func() { Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed()) })
		st := &gatedStore{ResourceStore: store.NewMemory(), gate: make(chan struct{}), sizes: make(chan int, 16)}
		src := newFakeSource()
		loop := &source.Loop{Name: "gated", Open: src.open, View: func() source.View { return source.Identity(kind) }, Store: st, Log: logr.Discard()}
		term := startTerm(loop.Run)

		src.set(thing("first", "1"), true)
		Eventually(st.sizes).Should(Receive(Equal(1)), "the first change is written alone")
		var sent atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 200 { // more than the source's channel holds
				src.set(thing(fmt.Sprintf("k%03d", i), "1"), true)
				sent.Add(1)
			}
		}()
		Eventually(sent.Load).Should(BeEquivalentTo(200), "the loop stopped taking changes while a write was in flight")
		Eventually(func() int { return len(src.changes) }).Should(BeZero())
		close(st.gate)
		Eventually(st.sizes).Should(Receive(Equal(200)), "what arrived during the write is the next batch")
		<-done
		Eventually(func() (int, error) {
			keys, err := sourcetest.Keys(context.Background(), st, kind)
			return len(keys), err
		}).Should(Equal(201))
		Expect(term.Stop()).To(Succeed())
	})
})

var _ = Describe("Registry", func() {
	open := func(context.Context, *url.URL, logr.Logger) (source.Source, error) { return nil, nil }
	reg := source.Registry{"file": open, "kubernetes": open}

	DescribeTable("resolves a URL to its scheme",
		func(raw, scheme string) {
			u, o, err := reg.Resolve(raw)
			Expect(err).NotTo(HaveOccurred())
			Expect(o).NotTo(BeNil())
			Expect(u.Scheme).To(Equal(scheme))
		},
		Entry("a bare word", "kubernetes", "kubernetes"),
		Entry("a bare word with a query", "kubernetes?namespace=a", "kubernetes"),
		Entry("a URL with query", "kubernetes://?namespace=a", "kubernetes"),
		Entry("a relative directory", "file://examples/registry", "file"),
	)

	It("names the registered schemes when one is unknown", func() {
		_, _, err := reg.Resolve("nacos://127.0.0.1:8848")
		Expect(err).To(MatchError(source.ErrUnknownScheme))
		Expect(err.Error()).To(ContainSubstring("file, kubernetes"))
	})

	DescribeTable("reads the directory of a file URL",
		func(raw, dir string) {
			u, err := source.ParseURL(raw)
			Expect(err).NotTo(HaveOccurred())
			Expect(source.Dir(u)).To(Equal(dir))
		},
		Entry("absolute", "file:///var/lib/admin", "/var/lib/admin"),
		Entry("relative", "file://examples/registry", "examples/registry"),
		Entry("opaque", "file:examples/registry", "examples/registry"),
	)
})
