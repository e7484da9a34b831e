package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/go-zookeeper/zk"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/discovery/zookeeper/zktest"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

const greeter = "org.apache.dubbo.samples.Greeter"

func testLogger() logr.Logger {
	return funcr.New(func(prefix, args string) { fmt.Fprintln(GinkgoWriter, prefix, args) }, funcr.Options{})
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// client is a test-side ZooKeeper client playing Dubbo's providers and consumers.
type client struct {
	conn   *zk.Conn
	events <-chan zk.Event
}

func dial(addr string, timeout time.Duration) *client {
	GinkgoHelper()
	conn, events, err := zk.Connect([]string{addr}, timeout, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	Expect(err).NotTo(HaveOccurred())
	Eventually(conn.State).WithTimeout(30 * time.Second).Should(Equal(zk.StateHasSession))
	return &client{conn: conn, events: events}
}

// Close closes the connection and waits for the client's goroutine.
func (c *client) Close() {
	c.conn.Close()
	for range c.events {
	}
}

func (c *client) mkdirs(p string) {
	GinkgoHelper()
	cur := ""
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		cur += "/" + part
		_, err := c.conn.Create(cur, nil, 0, zk.WorldACL(zk.PermAll))
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			Expect(err).NotTo(HaveOccurred(), "create %s", cur)
		}
	}
}

func (c *client) create(p string, data []byte, flags int32) error {
	c.mkdirs(path.Dir(p))
	_, err := c.conn.Create(p, data, flags, zk.WorldACL(zk.PermAll))
	return err
}

func (c *client) rmr(p string) {
	GinkgoHelper()
	children, _, err := c.conn.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return
	}
	Expect(err).NotTo(HaveOccurred())
	for _, ch := range children {
		c.rmr(path.Join(p, ch))
	}
	err = c.conn.Delete(p, -1)
	if !errors.Is(err, zk.ErrNoNode) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// providerNode is the path of a provider URL of greeter.
func providerNode(ip string, port int, app, extra string) string {
	u := fmt.Sprintf("dubbo://%s:%d/%s?anyhost=true&application=%s&interface=%s&methods=sayHello,sayGoodbye&side=provider&timestamp=1714550000000&version=1.0.0%s",
		ip, port, greeter, app, greeter, extra)
	return path.Join(InterfaceRoot, greeter, "providers", url.QueryEscape(u))
}

func consumerNode(ip, app string) string {
	u := fmt.Sprintf("consumer://%s/%s?application=%s&category=consumers&interface=%s&side=consumer&version=1.0.0", ip, greeter, app, greeter)
	return path.Join(InterfaceRoot, greeter, "consumers", url.QueryEscape(u))
}

func instanceData(app, ip string, port int, revision string) []byte {
	return fmt.Appendf(nil, `{"name":%q,"id":"%s:%d","address":%q,"port":%d,"sslPort":null,
"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"%s:%d","name":%q,
"metadata":{"dubbo.endpoints":"[{\"port\":%d,\"protocol\":\"tri\"}]","dubbo.metadata.revision":%q}},
"registrationTimeUTC":1714550000000,"serviceType":"DYNAMIC","uriSpec":null}`,
		app, ip, port, ip, port, ip, port, app, port, revision)
}

var _ = Describe("Discovery on zookeeper://", Ordered, Label("zookeeper"), func() {
	var (
		server *zktest.Server
		admin  *client // direct connection, for the test's own writes
		ctx    context.Context
		st     store.ResourceStore
		leaks  goleak.Option
	)

	BeforeAll(func() {
		java, cp, missing := zktest.Find()
		if missing != "" {
			if dbtest.Strict() {
				Fail("ADMIN_TEST_STRICT=1 and " + missing)
			}
			dbtest.ReportSkip("pkg/core/discovery/zookeeper", "zookeeper", missing)
			Skip("zookeeper: " + missing)
		}
		dir, err := os.MkdirTemp("", "admin-zookeeper-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, dir)
		server, err = zktest.Start(java, cp, dir, zktest.Options{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(server.Stop)
		admin = dial(server.Addr, 10*time.Second)
		DeferCleanup(admin.Close)
	})

	BeforeEach(func() {
		admin.rmr(InterfaceRoot)
		admin.rmr(ApplicationRoot)
		leaks = goleak.IgnoreCurrent()
		ctx = context.Background()
		st = store.NewMemory()
		DeferCleanup(func() {
			Eventually(func() error { return goleak.Find(leaks) }).WithTimeout(30 * time.Second).Should(Succeed())
		})
	})

	newDiscovery := func(addr, query string) *discovery.Discovery {
		reg := discovery.Sources()
		Register(reg)
		d := discovery.New(discovery.Config{URL: "zookeeper://" + addr + query, Resync: time.Minute}, st, reg, testLogger())
		Expect(d.Init(ctx)).To(Succeed())
		return d
	}
	keys := func(kind string) func() []string {
		return func() []string {
			k, err := sourcetest.Keys(ctx, st, kind)
			Expect(err).NotTo(HaveOccurred())
			return k
		}
	}
	specOf := func(kind, key string) func() map[string]any {
		return func() map[string]any {
			s, err := sourcetest.Specs(ctx, st, kind)
			Expect(err).NotTo(HaveOccurred())
			v, _ := s[key].(map[string]any)
			return v
		}
	}
	svcKey := greeter + ":1.0.0"

	It("mirrors interface-level providers and consumers as they register, change and leave", func() {
		Expect(admin.create(providerNode("10.0.0.1", 20880, "greeter-app", "&weight=100"), nil, 0)).To(Succeed())
		d := newDiscovery(server.Addr, "")
		term := startTerm(d.Start)

		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"greeter-app/10.0.0.1:20880"}))
		Expect(specOf(discovery.KindInstance, "greeter-app/10.0.0.1:20880")()).To(Equal(map[string]any{
			"application": "greeter-app", "ip": "10.0.0.1", "port": 20880.0, "protocol": "dubbo", "side": "provider",
			"weight": 100.0, "provides": []any{svcKey},
			"registeredAt": "2024-05-01T07:53:20Z", "updatedAt": "2024-05-01T07:53:20Z",
		}))

		By("registering a second provider and a consumer")
		Expect(admin.create(providerNode("10.0.0.2", 20880, "greeter-app", ""), nil, zk.FlagEphemeral)).To(Succeed())
		Expect(admin.create(consumerNode("10.0.1.1", "web"), nil, zk.FlagEphemeral)).To(Succeed())
		Eventually(specOf(discovery.KindService, svcKey)).Should(Equal(map[string]any{
			"interface": greeter, "version": "1.0.0", "methods": []any{"sayGoodbye", "sayHello"},
			"providers":            []any{"greeter-app/10.0.0.1:20880", "greeter-app/10.0.0.2:20880"},
			"providerApplications": []any{"greeter-app"},
			"consumers":            []any{"web/10.0.1.1:0"}, "consumerApplications": []any{"web"},
		}))
		Expect(keys(discovery.KindApplication)()).To(Equal([]string{"greeter-app", "web"}))

		By("re-registering a provider with a new weight (Dubbo replaces the URL node)")
		Expect(admin.conn.Delete(providerNode("10.0.0.1", 20880, "greeter-app", "&weight=100"), -1)).To(Succeed())
		Expect(admin.create(providerNode("10.0.0.1", 20880, "greeter-app", "&weight=50"), nil, 0)).To(Succeed())
		Eventually(specOf(discovery.KindInstance, "greeter-app/10.0.0.1:20880")).Should(HaveKeyWithValue("weight", 50.0))

		By("removing providers and the consumer")
		Expect(admin.conn.Delete(providerNode("10.0.0.2", 20880, "greeter-app", ""), -1)).To(Succeed())
		Expect(admin.conn.Delete(consumerNode("10.0.1.1", "web"), -1)).To(Succeed())
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"greeter-app/10.0.0.1:20880"}))
		Eventually(keys(discovery.KindApplication)).Should(Equal([]string{"greeter-app"}))

		By("removing the whole interface")
		admin.rmr(InterfaceRoot)
		Eventually(keys(discovery.KindService)).Should(BeEmpty())
		Eventually(keys(discovery.KindInstance)).Should(BeEmpty())

		By("registering again under a re-created root")
		Expect(admin.create(providerNode("10.0.0.3", 20880, "greeter-app", ""), nil, 0)).To(Succeed())
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"greeter-app/10.0.0.3:20880"}))
		Expect(term.Stop()).To(Succeed())
	})

	It("mirrors application-level instances and follows their data", func() {
		d := newDiscovery(server.Addr, "")
		term := startTerm(d.Start)
		Eventually(keys(discovery.KindInstance)).Should(BeEmpty())

		p := path.Join(ApplicationRoot, "greeter-app", "10.0.0.1:50051")
		Expect(admin.create(p, instanceData("greeter-app", "10.0.0.1", 50051, "r1"), 0)).To(Succeed())
		Eventually(specOf(discovery.KindInstance, "greeter-app/10.0.0.1:50051")).Should(Equal(map[string]any{
			"application": "greeter-app", "ip": "10.0.0.1", "port": 50051.0, "protocol": "tri", "side": "provider",
			"registeredAt": "2024-05-01T07:53:20Z", "updatedAt": "2024-05-01T07:53:20Z",
			"metadata": map[string]any{"dubbo.endpoints": `[{"port":50051,"protocol":"tri"}]`, "dubbo.metadata.revision": "r1"},
		}))

		By("updating the instance's data")
		_, err := admin.conn.Set(p, instanceData("greeter-app", "10.0.0.1", 50051, "r2"), -1)
		Expect(err).NotTo(HaveOccurred())
		Eventually(specOf(discovery.KindInstance, "greeter-app/10.0.0.1:50051")).Should(
			HaveKeyWithValue("metadata", HaveKeyWithValue("dubbo.metadata.revision", "r2")))

		By("removing it")
		Expect(admin.conn.Delete(p, -1)).To(Succeed())
		Eventually(keys(discovery.KindInstance)).Should(BeEmpty())
		Eventually(keys(discovery.KindApplication)).Should(BeEmpty())
		Expect(term.Stop()).To(Succeed())
	})

	It("logs and skips malformed nodes, never failing on them", func() {
		Expect(admin.create(path.Join(InterfaceRoot, greeter, "providers", "not%zz-a-url"), nil, 0)).To(Succeed())
		Expect(admin.create(path.Join(InterfaceRoot, greeter, "providers", url.QueryEscape("dubbo://10.0.0.9:1/x")), nil, 0)).To(Succeed())
		Expect(admin.create(path.Join(ApplicationRoot, "broken", "i1"), []byte("{not json"), 0)).To(Succeed())
		Expect(admin.create(providerNode("10.0.0.1", 20880, "greeter-app", ""), nil, 0)).To(Succeed())
		d := newDiscovery(server.Addr, "")
		term := startTerm(d.Start)
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"greeter-app/10.0.0.1:20880"}))

		By("fixing the broken instance")
		_, err := admin.conn.Set(path.Join(ApplicationRoot, "broken", "i1"), instanceData("broken", "10.0.0.7", 1, "r"), -1)
		Expect(err).NotTo(HaveOccurred())
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"broken/10.0.0.7:1", "greeter-app/10.0.0.1:20880"}))
		Consistently(term.Done()).WithTimeout(200 * time.Millisecond).ShouldNot(BeClosed())
		Expect(term.Stop()).To(Succeed())
	})

	It("lists again after losing and regaining leadership, picking up what changed in between", func() {
		Expect(admin.create(providerNode("10.0.0.1", 20880, "greeter-app", ""), nil, 0)).To(Succeed())
		d := newDiscovery(server.Addr, "")
		first := startTerm(d.Start)
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"greeter-app/10.0.0.1:20880"}))
		Expect(first.Stop()).To(Succeed())
		Expect(goleak.Find(leaks)).To(Succeed())

		By("changing the registry while not leading")
		Expect(admin.conn.Delete(providerNode("10.0.0.1", 20880, "greeter-app", ""), -1)).To(Succeed())
		Expect(admin.create(providerNode("10.0.0.2", 20880, "greeter-app", ""), nil, 0)).To(Succeed())
		Expect(admin.create(path.Join(ApplicationRoot, "other", "10.0.5.1:1"), instanceData("other", "10.0.5.1", 1, "r"), 0)).To(Succeed())

		second := startTerm(d.Start)
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"greeter-app/10.0.0.2:20880", "other/10.0.5.1:1"}))

		By("still watching in the new term")
		Expect(admin.conn.Delete(path.Join(ApplicationRoot, "other", "10.0.5.1:1"), -1)).To(Succeed())
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"greeter-app/10.0.0.2:20880"}))
		Expect(second.Stop()).To(Succeed())
	})

	It("mirrors a registry loaded in bulk, in both layouts, and follows its churn", func() {
		ifaces := zktest.Layout{Services: 60, Instances: 10}
		apps := zktest.Layout{Services: 30, Instances: 10, ApplicationLevel: true}
		conns := []*zk.Conn{admin.conn, admin.conn}
		Expect(zktest.Load(ctx, conns, ifaces, 1714550000000)).To(Succeed())
		Expect(zktest.Load(ctx, conns, apps, 1714550000000)).To(Succeed())
		ia, ii, is := ifaces.Counts()
		aa, ai, _ := apps.Counts()
		d := newDiscovery(server.Addr, "")
		term := startTerm(d.Start)
		count := func(kind string) func() int { return func() int { return len(keys(kind)()) } }
		Eventually(count(discovery.KindInstance)).Should(Equal(ii + ai))
		Eventually(count(discovery.KindApplication)).Should(Equal(ia + aa)) // each kind is its own Replace
		Eventually(count(discovery.KindService)).Should(Equal(is))

		By("re-registering, deregistering and registering providers of both layouts")
		for _, l := range []zktest.Layout{ifaces, apps} {
			Expect(zktest.Reregister(admin.conn, l, 3, 4, 1714550000000, 1714550001000)).To(Succeed())
			Expect(zktest.Deregister(admin.conn, l, 5, 6, 1714550000000)).To(Succeed())
			Eventually(specOf(discovery.KindInstance, l.InstanceKey(3, 4))).Should(HaveKeyWithValue("updatedAt", "2024-05-01T07:53:21Z"))
			Eventually(keys(discovery.KindInstance)).ShouldNot(ContainElement(l.InstanceKey(5, 6)))
			Expect(zktest.Register(admin.conn, l, 5, 6, 1714550002000)).To(Succeed())
			Eventually(specOf(discovery.KindInstance, l.InstanceKey(5, 6))).Should(HaveKeyWithValue("updatedAt", "2024-05-01T07:53:22Z"))
		}
		Expect(count(discovery.KindInstance)()).To(Equal(ii + ai))
		Expect(term.Stop()).To(Succeed())
	})

	It("stops walking the registry when its term ends, not after reading every node it fetched", func() {
		// A SIGTERM during a large registry's first walk must not hold the
		// term past the drain timeout: every node read ahead was parsed
		// even once the term had ended. The first malformed node logged
		// proves every read of the walk is back; the term ends right then.
		const n = 2000
		admin.mkdirs(path.Join(ApplicationRoot, "broken"))
		var ops []any
		for i := range n {
			ops = append(ops, &zk.CreateRequest{Path: path.Join(ApplicationRoot, "broken", fmt.Sprintf("i%04d", i)),
				Data: []byte("{not json"), Acl: zk.WorldACL(zk.PermAll)})
			if len(ops) == 500 || i == n-1 {
				_, err := admin.conn.Multi(ops...)
				Expect(err).NotTo(HaveOccurred())
				ops = nil
			}
		}
		termCtx, endTerm := context.WithCancel(ctx)
		defer endTerm()
		var skipped, afterEnd atomic.Int64
		log := funcr.New(func(prefix, args string) {
			if !strings.Contains(args, "skipping malformed registry node") {
				return
			}
			if skipped.Add(1) == 1 {
				endTerm()
			} else if termCtx.Err() != nil {
				afterEnd.Add(1)
			}
		}, funcr.Options{})
		reg := discovery.Sources()
		Register(reg)
		d := discovery.New(discovery.Config{URL: "zookeeper://" + server.Addr, Resync: time.Minute}, st, reg, log)
		Expect(d.Init(ctx)).To(Succeed())
		term := sourcetest.StartTerm(termCtx, d.Start)
		DeferCleanup(func() { _ = term.Stop() })
		Eventually(term.Done()).WithTimeout(time.Minute).Should(BeClosed())
		Expect(term.Err()).NotTo(HaveOccurred())
		Expect(skipped.Load()).To(BeNumerically(">=", 1))
		Expect(afterEnd.Load()).To(BeZero(), "nodes parsed after the term ended")
		Expect(keys(discovery.KindInstance)()).To(BeEmpty())
	})

	It("walks the registry again after its session expires", func() {
		proxy, err := newCutProxy(server.Addr)
		Expect(err).NotTo(HaveOccurred())
		defer proxy.Close()
		// The provider's session outlives the source's, so once the server
		// has expired the provider, it has expired the source too.
		provider := dial(proxy.Addr(), 3*time.Second)
		defer provider.Close()
		ephemeral := providerNode("10.0.0.5", 20880, "ephemeral-app", "")
		Expect(provider.create(ephemeral, nil, zk.FlagEphemeral)).To(Succeed())
		Expect(admin.create(providerNode("10.0.0.1", 20880, "greeter-app", ""), nil, 0)).To(Succeed())

		d := newDiscovery(proxy.Addr(), "?sessionTimeout=1s")
		term := startTerm(d.Start)
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"ephemeral-app/10.0.0.5:20880", "greeter-app/10.0.0.1:20880"}))

		By("cutting the source and the provider off until the server expires their sessions")
		proxy.Cut()
		Expect(admin.conn.Delete(providerNode("10.0.0.1", 20880, "greeter-app", ""), -1)).To(Succeed())
		Expect(admin.create(providerNode("10.0.0.2", 20880, "greeter-app", ""), nil, 0)).To(Succeed())
		Eventually(func() (bool, error) {
			ok, _, err := admin.conn.Exists(ephemeral)
			return ok, err
		}).WithTimeout(60 * time.Second).Should(BeFalse())

		By("letting them reconnect")
		proxy.Restore()
		Eventually(keys(discovery.KindInstance)).WithTimeout(60 * time.Second).Should(Equal([]string{"greeter-app/10.0.0.2:20880"}))

		By("seeing a provider re-register on its new session")
		Eventually(func() error { return provider.create(ephemeral, nil, zk.FlagEphemeral) }).WithTimeout(60 * time.Second).Should(Succeed())
		Eventually(keys(discovery.KindInstance)).Should(Equal([]string{"ephemeral-app/10.0.0.5:20880", "greeter-app/10.0.0.2:20880"}))
		Expect(term.Stop()).To(Succeed())
	})
})
