package discovery_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

const orderV1 = `
application: shop-order
instances:
  - ip: 10.0.2.11
    port: 20880
    protocol: dubbo
    weight: 100
    registeredAt: 2024-05-01T07:58:00Z
    provides:
      - {interface: org.example.OrderService, version: 1.0.0, methods: [get, create]}
    consumes:
      - {interface: org.example.UserService, version: 1.0.0}
`

const userV1 = `{"application": "shop-user", "instances": [
  {"ip": "10.0.3.11", "port": 20880, "protocol": "dubbo", "weight": 50,
   "provides": [{"interface": "org.example.UserService", "version": "1.0.0", "methods": ["getUser"]}]}]}`

// orderV2 moves the order service to a second instance and drops the
// consumed service.
const orderV2 = `
application: shop-order
instances:
  - ip: 10.0.2.12
    port: 20881
    protocol: tri
    provides:
      - {interface: org.example.OrderService, version: 1.0.0, methods: [get, create, cancel]}
`

var _ = Describe("Discovery on file://", func() {
	var (
		ctx   context.Context
		dir   string
		st    store.ResourceStore
		d     *discovery.Discovery
		leaks goleak.Option
	)

	write := func(name, content string) {
		GinkgoHelper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		Expect(os.WriteFile(tmp, []byte(content), 0o644)).To(Succeed())
		Expect(os.Rename(tmp, filepath.Join(dir, name))).To(Succeed())
	}
	keys := func(kind string) func() []string {
		return func() []string {
			k, err := sourcetest.Keys(ctx, st, kind)
			Expect(err).NotTo(HaveOccurred())
			return k
		}
	}
	specs := func(kind string) func() map[string]any {
		return func() map[string]any {
			s, err := sourcetest.Specs(ctx, st, kind)
			Expect(err).NotTo(HaveOccurred())
			return s
		}
	}

	BeforeEach(func() {
		leaks = goleak.IgnoreCurrent()
		ctx = context.Background()
		dir = GinkgoT().TempDir()
		st = store.NewMemory()
		d = discovery.New(discovery.Config{URL: "file://" + dir, Resync: time.Minute}, st, discovery.Sources(), logr.Discard())
		Expect(d.Init(ctx)).To(Succeed())
		DeferCleanup(func() {
			Eventually(func() error { return goleak.Find(leaks) }).WithTimeout(30 * time.Second).Should(Succeed())
		})
	})

	It("is a leader component", func() {
		Expect(runtime.NeedsLeader(d)).To(BeTrue())
		Expect(d.Name()).To(Equal("discovery"))
	})

	It("mirrors instance files into applications, instances and services, and follows edits", func() {
		write("shop-order.yaml", orderV1)
		term := startTerm(d.Start)

		Eventually(keys(discovery.KindApplication)).Should(Equal([]string{"shop-order"}))
		Eventually(specs(discovery.KindInstance)).Should(Equal(map[string]any{
			"shop-order/10.0.2.11:20880": map[string]any{
				"application": "shop-order", "ip": "10.0.2.11", "port": 20880.0, "protocol": "dubbo",
				"side": "provider", "weight": 100.0,
				"provides":     []any{"org.example.OrderService:1.0.0"},
				"consumes":     []any{"org.example.UserService:1.0.0"},
				"registeredAt": "2024-05-01T07:58:00Z", "updatedAt": "2024-05-01T07:58:00Z",
			},
		}))

		write("shop-user.json", userV1)
		Eventually(specs(discovery.KindService)).Should(Equal(map[string]any{
			"org.example.OrderService:1.0.0": map[string]any{
				"interface": "org.example.OrderService", "version": "1.0.0", "methods": []any{"create", "get"},
				"providers": []any{"shop-order/10.0.2.11:20880"}, "providerApplications": []any{"shop-order"},
			},
			"org.example.UserService:1.0.0": map[string]any{
				"interface": "org.example.UserService", "version": "1.0.0", "methods": []any{"getUser"},
				"providers": []any{"shop-user/10.0.3.11:20880"}, "providerApplications": []any{"shop-user"},
				"consumers": []any{"shop-order/10.0.2.11:20880"}, "consumerApplications": []any{"shop-order"},
			},
		}))
		Eventually(specs(discovery.KindApplication)).Should(HaveKeyWithValue("shop-order", map[string]any{
			"name": "shop-order", "instances": []any{"shop-order/10.0.2.11:20880"},
			"provides": []any{"org.example.OrderService:1.0.0"}, "consumes": []any{"org.example.UserService:1.0.0"},
		}))

		By("modifying a file")
		write("shop-order.yaml", orderV2)
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"shop-order/10.0.2.12:20881", "shop-user/10.0.3.11:20880"}))
		Eventually(specs(discovery.KindService)).Should(HaveKeyWithValue("org.example.UserService:1.0.0", map[string]any{
			"interface": "org.example.UserService", "version": "1.0.0", "methods": []any{"getUser"},
			"providers": []any{"shop-user/10.0.3.11:20880"}, "providerApplications": []any{"shop-user"},
		}))

		By("deleting a file")
		Expect(os.Remove(filepath.Join(dir, "shop-user.json"))).To(Succeed())
		Eventually(keys(discovery.KindApplication)).Should(Equal([]string{"shop-order"}))
		Eventually(keys(discovery.KindService)).Should(Equal([]string{"org.example.OrderService:1.0.0"}))
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"shop-order/10.0.2.12:20881"}))

		Expect(term.Stop()).To(Succeed())
	})

	It("skips a malformed file and picks it up once fixed", func() {
		write("shop-user.json", userV1)
		write("broken.yaml", "application: broken\ninstances: [{ip: 10.0.9.9, port: nope}]\n")
		write("notes.txt", "not an instance file")
		term := startTerm(d.Start)
		Eventually(keys(discovery.KindApplication)).Should(Equal([]string{"shop-user"}))

		write("broken.yaml", "application: broken\ninstances: [{ip: 10.0.9.9, port: 1}]\n")
		Eventually(keys(discovery.KindApplication)).Should(Equal([]string{"broken", "shop-user"}))

		write("broken.yaml", "application: broken\ninstances: [{ip: 10.0.9.9, prot: 1}]\n")
		Eventually(keys(discovery.KindApplication)).Should(Equal([]string{"shop-user"}))
		Expect(term.Stop()).To(Succeed())
	})

	It("lists again after losing and regaining leadership, picking up what changed in between", func() {
		write("shop-order.yaml", orderV1)
		first := startTerm(d.Start)
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"shop-order/10.0.2.11:20880"}))
		Expect(first.Stop()).To(Succeed())
		Expect(goleak.Find(leaks)).To(Succeed())

		By("changing the directory while not leading")
		write("shop-order.yaml", orderV2)
		write("shop-user.json", userV1)
		Consistently(keys(discovery.KindInstance)).WithTimeout(200 * time.Millisecond).
			Should(Equal([]string{"shop-order/10.0.2.11:20880"}))

		second := startTerm(d.Start)
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"shop-order/10.0.2.12:20881", "shop-user/10.0.3.11:20880"}))
		Eventually(keys(discovery.KindService)).Should(Equal([]string{"org.example.OrderService:1.0.0", "org.example.UserService:1.0.0"}))

		By("still watching in the new term")
		Expect(os.Remove(filepath.Join(dir, "shop-order.yaml"))).To(Succeed())
		Eventually(keys(discovery.KindApplication)).Should(Equal([]string{"shop-user"}))
		Expect(second.Stop()).To(Succeed())
	})

	It("fails to start on a directory that does not exist, without leaking", func() {
		d := discovery.New(discovery.Config{URL: "file://" + filepath.Join(dir, "missing")}, st, discovery.Sources(), logr.Discard())
		Expect(d.Start(ctx)).To(MatchError(os.ErrNotExist))
	})

	It("refuses an unknown scheme at Init", func() {
		d := discovery.New(discovery.Config{URL: "nacos://127.0.0.1:8848"}, st, discovery.Sources(), logr.Discard())
		Expect(d.Init(ctx)).To(MatchError(ContainSubstring(`scheme "nacos"`)))
	})
})

var _ = Describe("The example registry", func() {
	It("decodes into the shop's applications, instances and services", func() {
		dir := filepath.Join("..", "..", "..", "examples", "registry")
		entries, err := os.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		var items []store.Resource
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			Expect(err).NotTo(HaveOccurred())
			res, err := discovery.DecodeFile(e.Name(), data)
			Expect(err).NotTo(HaveOccurred(), e.Name())
			items = append(items, res...)
		}
		byKind, err := discovery.NewView().Reset(items)
		Expect(err).NotTo(HaveOccurred())
		Expect(byKind[discovery.KindApplication]).To(HaveLen(4))
		Expect(byKind[discovery.KindInstance]).To(HaveLen(7))
		Expect(byKind[discovery.KindService]).To(HaveLen(4))
	})
})

var _ = Describe("The view in batches", func() {
	It("derives each resource a batch touches once, ending where change-by-change Apply ends", func() {
		regs := func(n int) []source.Change {
			var out []source.Change
			for i := range n {
				res, err := discovery.NewRegistration(fmt.Sprintf("reg-%d", i), discovery.Registration{
					Application: "shop", IP: fmt.Sprintf("10.0.0.%d", i), Port: 20880, Side: discovery.SideProvider,
					Interface: "org.example.Cart", Version: "1.0.0", Protocol: "dubbo",
				})
				Expect(err).NotTo(HaveOccurred())
				out = append(out, source.Upsert(res))
			}
			return append(out, source.Delete(discovery.KindRegistration, "reg-0"))
		}
		one, batched := discovery.NewView(), discovery.NewView().(source.BatchView)
		final := map[string]store.Resource{}
		for _, c := range regs(5) {
			for _, sc := range one.Apply(c) {
				final[sc.Resource.Kind+"/"+sc.Resource.Key] = sc.Resource
				if sc.Type == store.Deleted {
					delete(final, sc.Resource.Kind+"/"+sc.Resource.Key)
				}
			}
			batched.Add(c)
		}
		flushed := batched.Flush()
		got := map[string]store.Resource{}
		for _, sc := range flushed {
			Expect(got).NotTo(HaveKey(sc.Resource.Kind+"/"+sc.Resource.Key), "derived twice in one batch")
			if sc.Type == store.Upserted {
				got[sc.Resource.Kind+"/"+sc.Resource.Key] = sc.Resource
			}
		}
		Expect(got).To(Equal(final))
		Expect(flushed).To(HaveLen(6), "one Application, one Service, four Instances (the fifth came and went)")
		Expect(batched.Flush()).To(BeEmpty())
	})
})
