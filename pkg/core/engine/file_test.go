package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

var _ = Describe("Engine on file://", func() {
	var (
		ctx   context.Context
		dir   string
		st    store.ResourceStore
		e     *engine.Engine
		leaks goleak.Option
	)

	write := func(name, content string) {
		GinkgoHelper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		Expect(os.WriteFile(tmp, []byte(content), 0o644)).To(Succeed())
		Expect(os.Rename(tmp, filepath.Join(dir, name))).To(Succeed())
	}
	specs := func() map[string]any {
		s, err := sourcetest.Specs(ctx, st, engine.KindRuntimeInstance)
		Expect(err).NotTo(HaveOccurred())
		return s
	}
	keys := func() []string {
		k, err := sourcetest.Keys(ctx, st, engine.KindRuntimeInstance)
		Expect(err).NotTo(HaveOccurred())
		return k
	}

	BeforeEach(func() {
		leaks = goleak.IgnoreCurrent()
		ctx = context.Background()
		dir = GinkgoT().TempDir()
		st = store.NewMemory()
		e = engine.New(engine.Config{URL: "file://" + dir, Resync: time.Minute}, st, engine.Sources(), logr.Discard())
		Expect(e.Init(ctx)).To(Succeed())
		DeferCleanup(func() {
			Eventually(func() error { return goleak.Find(leaks) }).WithTimeout(30 * time.Second).Should(Succeed())
		})
	})

	It("is a leader component", func() {
		Expect(runtime.NeedsLeader(e)).To(BeTrue())
		Expect(e.Name()).To(Equal("engine"))
	})

	It("mirrors runtime instance files and follows edits and deletions", func() {
		write("shop.yaml", `instances:
  - {name: order-0, namespace: shop, node: n1, podIP: 10.0.0.1, phase: Running, ready: true, application: shop-order, labels: {app: shop-order}}
  - {name: order-1, namespace: shop, phase: Pending, ready: false, application: shop-order}
`)
		term := startTerm(e.Start)
		Eventually(specs).Should(Equal(map[string]any{
			"shop/order-0": map[string]any{"name": "order-0", "namespace": "shop", "node": "n1", "podIP": "10.0.0.1",
				"phase": "Running", "ready": true, "application": "shop-order", "labels": map[string]any{"app": "shop-order"}},
			"shop/order-1": map[string]any{"name": "order-1", "namespace": "shop", "phase": "Pending", "ready": false,
				"application": "shop-order"},
		}))
		r, err := st.Get(ctx, engine.KindRuntimeInstance, "shop/order-0")
		Expect(err).NotTo(HaveOccurred())
		Expect(r.Labels).To(Equal(map[string]string{"application": "shop-order", "namespace": "shop"}))

		By("modifying a file")
		write("shop.yaml", `{"instances": [{"name": "order-1", "namespace": "shop", "podIP": "10.0.0.2", "phase": "Running", "ready": true}]}`)
		Eventually(specs).Should(Equal(map[string]any{
			"shop/order-1": map[string]any{"name": "order-1", "namespace": "shop", "podIP": "10.0.0.2", "phase": "Running", "ready": true},
		}))

		By("adding and deleting files")
		write("other.json", `{"instances": [{"name": "x", "namespace": "ops"}]}`)
		Eventually(keys).Should(Equal([]string{"ops/x", "shop/order-1"}))
		Expect(os.Remove(filepath.Join(dir, "shop.yaml"))).To(Succeed())
		Eventually(keys).Should(Equal([]string{"ops/x"}))
		Expect(term.Stop()).To(Succeed())
	})

	It("lists again after losing and regaining leadership", func() {
		write("a.yaml", "instances: [{name: a, namespace: ns}]\n")
		first := startTerm(e.Start)
		Eventually(keys).Should(Equal([]string{"ns/a"}))
		Expect(first.Stop()).To(Succeed())
		Expect(goleak.Find(leaks)).To(Succeed())

		Expect(os.Remove(filepath.Join(dir, "a.yaml"))).To(Succeed())
		write("b.yaml", "instances: [{name: b, namespace: ns}]\n")

		second := startTerm(e.Start)
		Eventually(keys).Should(Equal([]string{"ns/b"}))
		write("b.yaml", "instances: [{name: b, namespace: ns}, {name: c, namespace: ns}]\n")
		Eventually(keys).Should(Equal([]string{"ns/b", "ns/c"}))
		Expect(second.Stop()).To(Succeed())
	})
})

var _ = Describe("The example runtime", func() {
	It("decodes every file", func() {
		dir := filepath.Join("..", "..", "..", "examples", "runtime")
		entries, err := os.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		n := 0
		for _, en := range entries {
			data, err := os.ReadFile(filepath.Join(dir, en.Name()))
			Expect(err).NotTo(HaveOccurred())
			res, err := engine.DecodeFile(en.Name(), data)
			Expect(err).NotTo(HaveOccurred(), en.Name())
			n += len(res)
		}
		Expect(n).To(Equal(8))
	})
})
