package zookeeper

import (
	"context"
	"fmt"
	"path"
	"runtime"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// The watcher re-reads a directory each time its watch fires, and on the
// first walk every directory of the registry once. What it does per
// directory must depend on that directory only, or the first walk of a
// registry of N registrations in N/10 directories costs N²/10.
var _ = Describe("The watcher's record of reported registrations", func() {
	ctx := context.Background()

	// fill records n registrations, ten per provider directory, as the
	// first (silent) walk does.
	fill := func(n int) *watcher {
		w := newWatcher(nil, nil)
		w.silent = true
		for i := range n {
			key := path.Join(InterfaceRoot, fmt.Sprintf("svc%06d", i/10), "providers", fmt.Sprintf("p%d", i%10))
			Expect(w.report(ctx, store.Resource{Kind: discovery.KindRegistration, Key: key, Spec: []byte(`{}`)})).To(Succeed())
		}
		return w
	}
	// names are the children of directory dir of fill's registry.
	names := func() []string {
		out := make([]string, 10)
		for i := range out {
			out[i] = fmt.Sprintf("p%d", i)
		}
		return out
	}
	// allocated is what one re-sync of a directory that lost one of its
	// ten registrations allocates, on average over 20 rounds.
	allocated := func(w *watcher) uint64 {
		dir := path.Join(InterfaceRoot, "svc000000", "providers")
		gone := path.Join(dir, "p9")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 20 {
			Expect(w.dropMissing(ctx, dir, names()[:9])).To(Succeed())
			_, kept := w.known[gone] // not HaveKey: it would walk the whole map
			Expect(kept).To(BeFalse())
			Expect(w.dropPrefix(ctx, path.Join(InterfaceRoot, "svc000001"))).To(Succeed())
			Expect(w.report(ctx, store.Resource{Kind: discovery.KindRegistration, Key: gone, Spec: []byte(`{}`)})).To(Succeed())
			for i := range 10 {
				key := path.Join(InterfaceRoot, "svc000001", "providers", fmt.Sprintf("p%d", i))
				Expect(w.report(ctx, store.Resource{Kind: discovery.KindRegistration, Key: key, Spec: []byte(`{}`)})).To(Succeed())
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 20
	}

	It("re-syncs a directory at a cost that does not grow with the registry", func() {
		small, large := fill(1_000), fill(100_000)
		a, b := allocated(small), allocated(large)
		GinkgoWriter.Printf("bytes allocated per directory re-sync: %d with 1k registrations, %d with 100k\n", a, b)
		Expect(b).To(BeNumerically("<", 2*a+16<<10),
			"a directory re-sync allocated %d bytes with 100k registrations known against %d with 1k", b, a)
	})

	It("forgets exactly the registrations under a missing child or prefix", func() {
		w := fill(40)
		Expect(w.dropMissing(ctx, path.Join(InterfaceRoot, "svc000001", "providers"), []string{"p0", "p5"})).To(Succeed())
		Expect(w.dropMissing(ctx, InterfaceRoot, []string{"svc000000", "svc000001", "svc000003"})).To(Succeed())
		Expect(w.dropPrefix(ctx, path.Join(InterfaceRoot, "svc000003", "providers", "p7"))).To(Succeed())
		var left []string
		for k := range w.known {
			left = append(left, k)
		}
		want := []string{}
		for i := range 10 {
			want = append(want, path.Join(InterfaceRoot, "svc000000", "providers", fmt.Sprintf("p%d", i)))
			if i != 7 {
				want = append(want, path.Join(InterfaceRoot, "svc000003", "providers", fmt.Sprintf("p%d", i)))
			}
		}
		want = append(want, path.Join(InterfaceRoot, "svc000001", "providers", "p0"), path.Join(InterfaceRoot, "svc000001", "providers", "p5"))
		Expect(left).To(ConsistOf(want))
		Expect(w.dropPrefix(ctx, InterfaceRoot)).To(Succeed())
		Expect(w.known).To(BeEmpty())
	})
})
