package kubernetes_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/electortest"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
)

var nameSeq atomic.Int64

// newName is a fresh election (and Lease) name.
func newName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1)) }

// fastConfig scales the defaults down; the Lease holds whole seconds.
func fastConfig(name string) klease.Config {
	return klease.Config{
		Election: leader.Config{Name: name, LeaseDuration: 2 * time.Second, RenewDeadline: 1400 * time.Millisecond,
			RetryPeriod: 200 * time.Millisecond, JitterFactor: 0.2, OpTimeout: 400 * time.Millisecond},
		Namespace: namespace,
		LeaseName: name,
	}
}

type skewedClock time.Duration

func (s skewedClock) Now() time.Time { return time.Now().Add(time.Duration(s)) }

// openEpochs opens a separate pool on the store's database, as a separate
// replica would.
func openEpochs() *leader.Epochs {
	GinkgoHelper()
	db, err := tdb.Open(context.Background())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
	epochs, err := leader.NewEpochs(db)
	Expect(err).NotTo(HaveOccurred())
	return epochs
}

// newElectorVia is one replica reaching the apiserver with rc.
func newElectorVia(rc *rest.Config, cfg klease.Config, opts ...klease.Option) *klease.Elector {
	GinkgoHelper()
	client := kubeapiserver.GinkgoClient(rc)
	e, err := klease.New(client, openEpochs(), cfg, append([]klease.Option{klease.WithLogger(GinkgoLogr)}, opts...)...)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	Expect(e.Prepare(ctx)).To(Succeed())
	return e
}

func newElector(cfg klease.Config, opts ...klease.Option) *klease.Elector {
	GinkgoHelper()
	return newElectorVia(server.Config(), cfg, opts...)
}

func getLease(ctx context.Context, name string) *coordinationv1.Lease {
	GinkgoHelper()
	client := kubeapiserver.GinkgoClient(server.Config())
	obj, err := client.CoordinationV1().Leases(namespace).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	return obj
}

var _ = Describe("Elector on a Kubernetes Lease (real kube-apiserver)", Label("kubernetes"), Ordered, ContinueOnFailure, func() {
	BeforeAll(startServer)
	BeforeEach(leakCheck)

	It("makes the first attempt at once and shows the term on the Lease", func(ctx SpecContext) {
		cfg := fastConfig(newName("first"))
		cfg.Election = leader.Config{Name: cfg.Election.Name, LeaseDuration: 5 * time.Minute, RenewDeadline: 4 * time.Minute,
			RetryPeriod: time.Minute, JitterFactor: 0, OpTimeout: 5 * time.Second}
		e := newElector(cfg)
		var w electortest.Won
		Eventually(electortest.Campaign(ctx, e), "10s").Should(Receive(&w))
		carried, ok := leader.TermFrom(w.L.Context())
		Expect(ok).To(BeTrue())
		Expect(carried).To(Equal(w.L.Term()))
		Expect(w.L.Term().Holder).To(Equal(e.Identity()))

		obj := getLease(ctx, cfg.LeaseName)
		Expect(*obj.Spec.HolderIdentity).To(Equal(e.Identity()))
		Expect(*obj.Spec.LeaseDurationSeconds).To(BeEquivalentTo(300))
		Eventually(func() string { return getLease(ctx, cfg.LeaseName).Annotations[klease.TermAnnotation] }).
			Should(Equal(fmt.Sprint(w.L.Term().Number)))

		rec, err := e.Leader(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Backend).To(Equal("kubernetes"))
		Expect(rec.Holder).To(Equal(e.Identity()))
		Expect(rec.Term).To(Equal(w.L.Term().Number))
		Expect(rec.Held()).To(BeTrue())
		Expect(rec.Token).To(HavePrefix("lease " + namespace + "/" + cfg.LeaseName + " resourceVersion "))
		Expect(w.L.ValidUntil()).To(BeTemporally(">", time.Now().Add(4*time.Minute)))
		Expect(w.L.Resign(ctx)).To(Succeed())
		Expect(*getLease(ctx, cfg.LeaseName).Spec.HolderIdentity).To(BeEmpty(), "resign empties the holder")
	})

	It("cancels a crashed leader's term before a follower takes the Lease, about one lease duration later", func(ctx SpecContext) {
		cfg := fastConfig(newName("crash"))
		actx, crash := context.WithCancel(ctx)
		defer crash()
		a, b := newElector(cfg), newElector(cfg)
		var wa, wb electortest.Won
		Eventually(electortest.Campaign(actx, a), "10s").Should(Receive(&wa))
		bwins := electortest.Campaign(ctx, b)
		Consistently(bwins, 2*cfg.Election.LeaseDuration).ShouldNot(Receive(), "a renewed Lease is not taken")

		crash() // stops renewing, releases nothing
		<-wa.L.Done()
		crashed := time.Now()
		Eventually(bwins, "10s").Should(Receive(&wb))
		AddReportEntry("crash takeover", wb.At.Sub(crashed).Round(time.Millisecond).String())
		Expect(wb.At.Sub(crashed)).To(BeNumerically(">=", cfg.Election.LeaseDuration-cfg.Election.RetryPeriod))
		Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(wb.L.Resign(ctx)).To(Succeed())
		Expect(wa.L.Resign(ctx)).To(Succeed(), "resigning after losing the Lease is not an error")
		Expect(*getLease(ctx, cfg.LeaseName).Spec.HolderIdentity).To(BeEmpty())
	})

	DescribeTable("ignores the candidates' wall clocks",
		func(ctx SpecContext, skew time.Duration) {
			cfg := fastConfig(newName("skew"))
			actx, crash := context.WithCancel(ctx)
			defer crash()
			a := newElector(cfg, klease.WithClock(skewedClock(-skew)))
			b := newElector(cfg, klease.WithClock(skewedClock(skew)))
			var wa, wb electortest.Won
			Eventually(electortest.Campaign(actx, a), "10s").Should(Receive(&wa))
			bwins := electortest.Campaign(ctx, b)
			Consistently(bwins, 2*cfg.Election.LeaseDuration).ShouldNot(Receive(), "the live Lease is not stolen")
			Expect(wa.L.Context().Err()).NotTo(HaveOccurred(), "the leader kept renewing")
			crash()
			<-wa.L.Done()
			Eventually(bwins, "10s").Should(Receive(&wb))
			Expect(wb.L.Resign(ctx)).To(Succeed())
		},
		Entry("one hour apart one way", time.Hour),
		Entry("one hour apart the other way", -time.Hour),
	)

	It("bounds Resign by the caller's context while the apiserver is unreachable, and releases on a later Resign", func(ctx SpecContext) {
		cfg := fastConfig(newName("unreachable"))
		proxy, err := faultproxy.Start(server.Addr())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(proxy.Close)
		via := server.Config()
		via.Host = "https://" + proxy.Addr()
		a, b := newElectorVia(via, cfg), newElector(cfg)
		var wa, wb electortest.Won
		Eventually(electortest.Campaign(ctx, a), "10s").Should(Receive(&wa))
		bwins := electortest.Campaign(ctx, b)

		proxy.Pause()
		rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		Expect(wa.L.Resign(rctx)).To(MatchError(context.DeadlineExceeded))
		Expect(time.Since(start)).To(BeNumerically("<", time.Second))
		Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrResigned), "the term ended at once")
		Consistently(bwins, "500ms").ShouldNot(Receive(), "the Lease was not released: a follower waits for its expiry")
		proxy.Resume()
		Expect(wa.L.Resign(ctx)).To(Succeed())
		Eventually(bwins, "10s").Should(Receive(&wb))
		Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(wb.L.Resign(ctx)).To(Succeed())
	})

	It("ends the term when the Lease is force-released and taken, and the old holder's resign releases nothing", func(ctx SpecContext) {
		cfg := fastConfig(newName("stolen"))
		a, op, thief := newElector(cfg), newElector(cfg), newElector(cfg)
		var wa, wt electortest.Won
		Eventually(electortest.Campaign(ctx, a), "10s").Should(Receive(&wa))
		before, err := op.ForceRelease(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(before.Holder).To(Equal(a.Identity()))
		Eventually(electortest.Campaign(ctx, thief), "10s").Should(Receive(&wt))
		Eventually(wa.L.Context().Done(), "10s").Should(BeClosed())
		Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrLeaseLost))
		Expect(wa.L.Resign(ctx)).To(Succeed())
		Expect(*getLease(ctx, cfg.LeaseName).Spec.HolderIdentity).To(Equal(thief.Identity()))
		Expect(wt.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(wt.L.Resign(ctx)).To(Succeed())
		free, err := op.ForceRelease(ctx)
		Expect(err).NotTo(HaveOccurred(), "force-releasing a free Lease is a no-op")
		Expect(free.Holder).To(BeEmpty())
	})

	It("keeps leading when someone else edits the Lease, and loses it at once when it is deleted", func(ctx SpecContext) {
		cfg := fastConfig(newName("edited"))
		a := newElector(cfg)
		var wa electortest.Won
		Eventually(electortest.Campaign(ctx, a), "10s").Should(Receive(&wa))
		client := kubeapiserver.GinkgoClient(server.Config())
		obj := getLease(ctx, cfg.LeaseName)
		obj.Labels = map[string]string{"edited": "by-kubectl"}
		_, err := client.CoordinationV1().Leases(namespace).Update(ctx, obj, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Consistently(wa.L.Context().Done(), 2*cfg.Election.LeaseDuration).ShouldNot(BeClosed())
		Expect(getLease(ctx, cfg.LeaseName).Labels).To(HaveKeyWithValue("edited", "by-kubectl"))

		Expect(client.CoordinationV1().Leases(namespace).Delete(ctx, cfg.LeaseName, metav1.DeleteOptions{})).To(Succeed())
		Eventually(wa.L.Context().Done(), "5s").Should(BeClosed())
		Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrLeaseLost))
		Expect(wa.L.Resign(ctx)).To(Succeed())
	})

	It("fails Prepare, naming the verbs, for credentials without the Role", func(ctx SpecContext) {
		client := kubeapiserver.GinkgoClient(server.Config())
		sa := newName("norole")
		_, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		token, err := server.ServiceAccountToken(ctx, namespace, sa)
		Expect(err).NotTo(HaveOccurred())
		e, err := klease.New(kubeapiserver.GinkgoClient(server.ConfigWithToken(token)), openEpochs(), fastConfig(newName("forbidden")))
		Expect(err).NotTo(HaveOccurred())
		err = e.Prepare(ctx)
		Expect(err).To(MatchError(klease.ErrForbidden))
		Expect(err.Error()).To(ContainSubstring("get, create, update"))
		Expect(err.Error()).NotTo(ContainSubstring(token))
	})
})

var _ = Describe("Kubernetes election config", func() {
	valid := func() klease.Config { return fastConfig("admin") }
	DescribeTable("names the broken field",
		func(mutate func(*klease.Config), field string) {
			c := valid()
			mutate(&c)
			err := c.Validate()
			Expect(err).To(MatchError(leader.ErrInvalidConfig))
			Expect(err.Error()).To(ContainSubstring(field))
		},
		Entry("namespace empty", func(c *klease.Config) { c.Namespace = "" }, "namespace"),
		Entry("namespace not a label", func(c *klease.Config) { c.Namespace = "Bad_NS" }, "namespace"),
		Entry("lease name not a subdomain", func(c *klease.Config) { c.LeaseName = "no spaces" }, "leaseName"),
		Entry("lease name empty", func(c *klease.Config) { c.LeaseName = "" }, "leaseName"),
		Entry("kubeconfig missing", func(c *klease.Config) { c.Kubeconfig = "/nonexistent/kubeconfig" }, "kubeconfig"),
		Entry("kubeconfig a directory", func(c *klease.Config) { c.Kubeconfig = os.TempDir() }, "kubeconfig"),
		Entry("lease duration in fractions of seconds", func(c *klease.Config) { c.Election.LeaseDuration = 2500 * time.Millisecond }, "leaseDuration"),
		Entry("renew deadline not below lease duration", func(c *klease.Config) { c.Election.RenewDeadline = 2 * time.Second }, "renewDeadline"),
	)

	It("defaults the lease name to the election name", func() {
		c := valid()
		c.LeaseName = ""
		Expect(c.Defaulted().LeaseName).To(Equal("admin"))
		Expect(c.Defaulted().Validate()).To(Succeed())
	})

	It("loads a kubeconfig file and refuses in-cluster outside a pod", func() {
		c := valid()
		Expect(c.Validate()).To(Succeed())
		_, err := c.RESTConfig()
		Expect(err).To(MatchError(ContainSubstring("kubeconfig")))
		path := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		Expect(os.WriteFile(path, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"+
			"users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"), 0o600)).To(Succeed())
		c.Kubeconfig = path
		rc, err := c.RESTConfig()
		Expect(err).NotTo(HaveOccurred())
		Expect(rc.Host).To(Equal("https://127.0.0.1:1"))
		Expect(rc.QPS).To(BeNumerically("<", 0), "no client-side rate limit: the elector paces itself")
	})
})
