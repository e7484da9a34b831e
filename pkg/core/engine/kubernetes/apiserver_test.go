package kubernetes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/engine/kubernetes"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

var nsSeq atomic.Int64

var _ = Describe("Engine on kubernetes (real kube-apiserver)", Label("kubernetes"), Ordered, ContinueOnFailure, func() {
	var (
		server *kubeapiserver.Server
		client clientset.Interface
		st     store.ResourceStore
	)

	BeforeAll(func() {
		server = kubeapiserver.Ginkgo("pkg/core/engine/kubernetes")
	})
	BeforeEach(func() {
		ignore := goleak.IgnoreCurrent()
		DeferCleanup(func() {
			Eventually(func() error { return goleak.Find(ignore) }).WithTimeout(30 * time.Second).Should(Succeed())
		})
		client = kubeapiserver.GinkgoClient(server.Config())
		st = store.NewMemory()
	})

	// namespaces creates n fresh namespaces (a namespace is never deleted:
	// no controller-manager finalizes it).
	namespaces := func(ctx context.Context, n int) []string {
		GinkgoHelper()
		var out []string
		for range n {
			ns := fmt.Sprintf("ns-%d", nsSeq.Add(1))
			_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			out = append(out, ns)
		}
		return out
	}
	newEngine := func(ctx context.Context, cfg kubernetes.Config) *engine.Engine {
		GinkgoHelper()
		c := kubeapiserver.GinkgoClient(server.Config())
		reg := engine.Sources()
		reg.Register(kubernetes.Scheme, kubernetes.Opener(c, cfg))
		e := engine.New(engine.Config{URL: "kubernetes", Resync: time.Minute}, st, reg, logr.Discard())
		Expect(e.Init(ctx)).To(Succeed())
		return e
	}
	create := func(ctx context.Context, ns, name, app string) {
		GinkgoHelper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
			Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "app", Image: "example/app:1"}}},
		}
		_, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	relabel := func(ctx context.Context, ns, name string, labels map[string]string) {
		GinkgoHelper()
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		p.Labels = labels
		_, err = client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	// run moves a pod to Running and ready through the status subresource, as
	// a kubelet would.
	run := func(ctx context.Context, ns, name, ip string) {
		GinkgoHelper()
		p, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		now := metav1.Now()
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		p.Status.StartTime = &now
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		_, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	remove := func(ctx context.Context, ns, name string) {
		GinkgoHelper()
		zero := int64(0)
		Expect(client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})).To(Succeed())
	}
	// apiSpecs maps the apiserver's pods of namespaces (all when none) the
	// way the source does.
	apiSpecs := func(ctx context.Context, g Gomega, namespaces ...string) map[string]any {
		if len(namespaces) == 0 {
			namespaces = []string{corev1.NamespaceAll}
		}
		out := map[string]any{}
		for _, ns := range namespaces {
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			for i := range pods.Items {
				res, err := kubernetes.RuntimeInstance(&pods.Items[i], kubernetes.DefaultApplicationLabels).Resource()
				g.Expect(err).NotTo(HaveOccurred())
				var v any
				g.Expect(json.Unmarshal(res.Spec, &v)).To(Succeed())
				out[res.Key] = v
			}
		}
		return out
	}
	// converged waits until the store holds exactly the apiserver's pods.
	converged := func(ctx context.Context, namespaces ...string) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			got, err := sourcetest.Specs(ctx, st, engine.KindRuntimeInstance)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(apiSpecs(ctx, g, namespaces...)))
		}).Should(Succeed())
	}
	specOf := func(ctx context.Context, key string) map[string]any {
		GinkgoHelper()
		s, err := sourcetest.Specs(ctx, st, engine.KindRuntimeInstance)
		Expect(err).NotTo(HaveOccurred())
		v, _ := s[key].(map[string]any)
		return v
	}

	It("mirrors pods of several namespaces through creates, relabels, status changes and deletes, across failovers", func(ctx SpecContext) {
		ns := namespaces(ctx, 3)
		watched, elsewhere := ns[:2], ns[2]
		create(ctx, watched[0], "order-0", "shop-order")
		create(ctx, watched[1], "user-0", "shop-user")
		create(ctx, elsewhere, "unwatched-0", "other")

		cfg := kubernetes.Config{Namespaces: append(watched, watched[0])} // a repeated namespace is watched once
		a, b := newEngine(ctx, cfg), newEngine(ctx, cfg)
		term := startTerm(a.Start)
		converged(ctx, watched...)
		Expect(specOf(ctx, watched[0]+"/order-0")).To(And(
			HaveKeyWithValue("name", "order-0"), HaveKeyWithValue("namespace", watched[0]), HaveKeyWithValue("node", "node-1"),
			HaveKeyWithValue("phase", "Pending"), HaveKeyWithValue("ready", false), HaveKeyWithValue("application", "shop-order"),
			HaveKeyWithValue("labels", map[string]any{"app": "shop-order"}), HaveKey("createdAt"), Not(HaveKey("podIP"))))

		By("a pod created, started through its status, relabelled and deleted")
		create(ctx, watched[0], "order-1", "shop-order")
		converged(ctx, watched...)
		run(ctx, watched[0], "order-1", "10.0.0.11")
		converged(ctx, watched...)
		Expect(specOf(ctx, watched[0]+"/order-1")).To(And(HaveKeyWithValue("phase", "Running"), HaveKeyWithValue("ready", true), HaveKeyWithValue("podIP", "10.0.0.11")))
		relabel(ctx, watched[0], "order-1", map[string]string{"dubbo.apache.org/application": "shop-order-v2"})
		converged(ctx, watched...)
		Expect(specOf(ctx, watched[0]+"/order-1")).To(HaveKeyWithValue("application", "shop-order-v2"))
		remove(ctx, watched[1], "user-0")
		converged(ctx, watched...)

		By("leadership lost: changes while nobody leads")
		Expect(term.Stop()).To(Succeed())
		create(ctx, watched[1], "user-1", "shop-user")
		run(ctx, watched[0], "order-0", "10.0.0.10")
		remove(ctx, watched[0], "order-1")
		create(ctx, elsewhere, "unwatched-1", "other")

		By("another replica leads and catches up")
		term = startTerm(b.Start)
		converged(ctx, watched...)
		create(ctx, watched[1], "user-2", "shop-user")
		relabel(ctx, watched[1], "user-1", nil)
		converged(ctx, watched...)
		Expect(specOf(ctx, watched[1]+"/user-1")).NotTo(HaveKey("application"))

		By("the first replica leads again")
		Expect(term.Stop()).To(Succeed())
		remove(ctx, watched[1], "user-2")
		term = startTerm(a.Start)
		converged(ctx, watched...)
		run(ctx, watched[1], "user-1", "10.0.1.1")
		converged(ctx, watched...)
		Expect(term.Stop()).To(Succeed())
	})

	It("watches every namespace when none is chosen", func(ctx SpecContext) {
		ns := namespaces(ctx, 2)
		create(ctx, ns[0], "a-0", "a")
		e := newEngine(ctx, kubernetes.Config{})
		term := startTerm(e.Start)
		converged(ctx)
		create(ctx, ns[1], "b-0", "b")
		converged(ctx)
		Expect(specOf(ctx, ns[1]+"/b-0")).To(HaveKeyWithValue("application", "b"))
		remove(ctx, ns[0], "a-0")
		converged(ctx)
		Expect(term.Stop()).To(Succeed())
	})
})
