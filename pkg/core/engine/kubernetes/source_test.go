package kubernetes_test

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/engine/kubernetes"
	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

func pod(ns, name, node, ip string, ready bool, labels map[string]string) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
		},
	}
}

var _ = Describe("Engine on kubernetes (fake clientset, real informers)", func() {
	var (
		ctx    context.Context
		client *fake.Clientset
		st     store.ResourceStore
		leaks  goleak.Option
	)

	newEngine := func(cfg kubernetes.Config) *engine.Engine {
		reg := engine.Sources()
		reg.Register(kubernetes.Scheme, kubernetes.Opener(client, cfg))
		e := engine.New(engine.Config{URL: "kubernetes", Resync: time.Minute}, st, reg, logr.Discard())
		Expect(e.Init(ctx)).To(Succeed())
		return e
	}
	keys := func() []string {
		k, err := sourcetest.Keys(ctx, st, engine.KindRuntimeInstance)
		Expect(err).NotTo(HaveOccurred())
		return k
	}
	spec := func(key string) func() map[string]any {
		return func() map[string]any {
			s, err := sourcetest.Specs(ctx, st, engine.KindRuntimeInstance)
			Expect(err).NotTo(HaveOccurred())
			v, _ := s[key].(map[string]any)
			return v
		}
	}
	create := func(p *corev1.Pod) {
		GinkgoHelper()
		_, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	update := func(p *corev1.Pod) {
		GinkgoHelper()
		_, err := client.CoreV1().Pods(p.Namespace).Update(ctx, p, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
	}
	remove := func(ns, name string) {
		GinkgoHelper()
		Expect(client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
	}

	BeforeEach(func() {
		leaks = goleak.IgnoreCurrent()
		ctx = context.Background()
		st = store.NewMemory()
		client = fake.NewSimpleClientset(
			pod("shop", "order-0", "node-1", "10.0.0.1", true, map[string]string{"app": "shop-order"}),
			pod("shop", "user-0", "node-2", "10.0.0.2", false, map[string]string{"app.kubernetes.io/name": "shop-user", "app": "ignored"}),
			pod("ops", "prometheus-0", "node-1", "10.0.9.1", true, nil),
		)
		DeferCleanup(func() {
			Eventually(func() error { return goleak.Find(leaks) }).WithTimeout(30 * time.Second).Should(Succeed())
		})
	})

	It("mirrors the pods of the chosen namespaces and follows their changes", func() {
		e := newEngine(kubernetes.Config{Namespaces: []string{"shop"}})
		term := startTerm(e.Start)

		Eventually(keys).Should(Equal([]string{"shop/order-0", "shop/user-0"}))
		Expect(spec("shop/order-0")()).To(Equal(map[string]any{
			"name": "order-0", "namespace": "shop", "node": "node-1", "podIP": "10.0.0.1", "phase": "Running",
			"ready": true, "application": "shop-order", "labels": map[string]any{"app": "shop-order"},
		}))
		Expect(spec("shop/user-0")()).To(HaveKeyWithValue("application", "shop-user"))
		Expect(spec("shop/user-0")()).To(HaveKeyWithValue("ready", false))

		By("adding, updating and deleting pods")
		create(pod("shop", "order-1", "node-3", "10.0.0.3", true, map[string]string{"dubbo.apache.org/application": "shop-order"}))
		create(pod("ops", "grafana-0", "node-1", "10.0.9.2", true, nil))
		update(pod("shop", "user-0", "node-2", "10.0.0.2", true, map[string]string{"app.kubernetes.io/name": "shop-user"}))
		remove("shop", "order-0")
		Eventually(keys).Should(Equal([]string{"shop/order-1", "shop/user-0"}))
		Eventually(spec("shop/user-0")).Should(HaveKeyWithValue("ready", true))
		Expect(spec("shop/order-1")()).To(HaveKeyWithValue("application", "shop-order"))

		Expect(term.Stop()).To(Succeed())
	})

	It("watches every namespace when none is chosen", func() {
		e := newEngine(kubernetes.Config{})
		term := startTerm(e.Start)
		Eventually(keys).Should(Equal([]string{"ops/prometheus-0", "shop/order-0", "shop/user-0"}))
		create(pod("ops", "grafana-0", "node-1", "10.0.9.2", true, nil))
		Eventually(keys).Should(ContainElement("ops/grafana-0"))
		Expect(term.Stop()).To(Succeed())
	})

	It("watches several namespaces", func() {
		e := newEngine(kubernetes.Config{Namespaces: []string{"ops", "shop", "ops"}})
		term := startTerm(e.Start)
		Eventually(keys).Should(Equal([]string{"ops/prometheus-0", "shop/order-0", "shop/user-0"}))
		remove("ops", "prometheus-0")
		Eventually(keys).Should(Equal([]string{"shop/order-0", "shop/user-0"}))
		Expect(term.Stop()).To(Succeed())
	})

	It("restarts the list-watch after losing and regaining leadership", func() {
		e := newEngine(kubernetes.Config{Namespaces: []string{"shop"}})
		first := startTerm(e.Start)
		Eventually(keys).Should(Equal([]string{"shop/order-0", "shop/user-0"}))
		Expect(first.Stop()).To(Succeed())
		Expect(goleak.Find(leaks)).To(Succeed())

		By("changing pods while not leading")
		remove("shop", "order-0")
		create(pod("shop", "order-2", "node-1", "10.0.0.4", true, map[string]string{"app": "shop-order"}))
		update(pod("shop", "user-0", "node-5", "10.0.0.5", true, nil))
		Expect(keys()).To(Equal([]string{"shop/order-0", "shop/user-0"}))

		second := startTerm(e.Start)
		Eventually(keys).Should(Equal([]string{"shop/order-2", "shop/user-0"}))
		Eventually(spec("shop/user-0")).Should(HaveKeyWithValue("node", "node-5"))

		By("still watching in the new term")
		create(pod("shop", "order-3", "node-1", "10.0.0.6", true, nil))
		Eventually(keys).Should(Equal([]string{"shop/order-2", "shop/order-3", "shop/user-0"}))
		Expect(second.Stop()).To(Succeed())
	})
})
