package kube_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
)

const manifests = "../../deploy/kubernetes"

// objects reads every object of the YAML files in deploy/kubernetes.
func objects(files ...string) []*unstructured.Unstructured {
	GinkgoHelper()
	if len(files) == 0 {
		all, err := filepath.Glob(filepath.Join(manifests, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for _, f := range all {
			if filepath.Base(f) != "kustomization.yaml" {
				files = append(files, filepath.Base(f))
			}
		}
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(manifests, f))
		Expect(err).NotTo(HaveOccurred())
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]any
			err := dec.Decode(&obj)
			if errors.Is(err, io.EOF) {
				break
			}
			Expect(err).NotTo(HaveOccurred(), f)
			if obj == nil {
				continue
			}
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
	return out
}

// apply server-side-applies objs, as `kubectl apply --server-side
// [--dry-run=server]` would.
func apply(ctx context.Context, dryRun bool, objs ...*unstructured.Unstructured) error {
	dc, err := discovery.NewDiscoveryClientForConfig(server.Config())
	if err != nil {
		return err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(server.Config())
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "dubbo-admin-test", Force: ptr(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return err
		}
		data, err := obj.MarshalJSON()
		if err != nil {
			return err
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
		}
		if _, err := ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func typed[T any](u *unstructured.Unstructured) *T {
	GinkgoHelper()
	var out T
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out)).To(Succeed())
	return &out
}

func find(objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	GinkgoHelper()
	for _, o := range objs {
		if o.GetKind() == kind {
			return o
		}
	}
	Fail("no " + kind + " in " + manifests)
	return nil
}

var _ = Describe("deploy/kubernetes", Label("kubernetes"), Ordered, ContinueOnFailure, func() {
	BeforeAll(startServer)

	It("is accepted by the apiserver (server-side dry-run apply of every object)", func(ctx SpecContext) {
		objs := objects()
		Expect(apply(ctx, false, find(objs, "Namespace"))).To(Succeed(), "the namespace, for real: dry-run objects need it")
		for _, o := range objs {
			Expect(apply(ctx, true, o)).To(Succeed(), "%s %s", o.GetKind(), o.GetName())
		}
		By("and nothing was stored by the dry run")
		client := kubeapiserver.GinkgoClient(server.Config())
		_, err := client.AppsV1().Deployments("dubbo-admin").Get(ctx, "dubbo-admin", metav1.GetOptions{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "dry run stored the Deployment: %v", err)
	})

	It("lists every manifest but the example Secret in kustomization.yaml", func() {
		data, err := os.ReadFile(filepath.Join(manifests, "kustomization.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var k struct {
			Resources []string `json:"resources"`
		}
		Expect(yaml.Unmarshal(data, &k)).To(Succeed())
		all, err := filepath.Glob(filepath.Join(manifests, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		var want []string
		for _, f := range all {
			if b := filepath.Base(f); b != "kustomization.yaml" && b != "secret.example.yaml" {
				want = append(want, b)
			}
		}
		Expect(k.Resources).To(ConsistOf(want))
	})

	It("runs three replicas with probes, a Secret-referenced DSN and a disruption budget", func() {
		objs := objects()
		d := typed[appsv1.Deployment](find(objs, "Deployment"))
		Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(3)))
		Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal("dubbo-admin"))
		c := d.Spec.Template.Spec.Containers[0]
		Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
		Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
		var dsn *corev1.EnvVar
		for i, e := range c.Env {
			if e.Name == "ADMIN_DATABASE_DSN" {
				dsn = &c.Env[i]
			}
		}
		Expect(dsn).NotTo(BeNil())
		Expect(dsn.Value).To(BeEmpty(), "the DSN is never a literal")
		Expect(dsn.ValueFrom.SecretKeyRef).NotTo(BeNil())
		Expect(strings.Join(c.Args, " ")).NotTo(ContainSubstring("dsn"), "nor an argument")
		Expect(find(objs, "PodDisruptionBudget").Object).To(HaveKeyWithValue("spec", HaveKeyWithValue("maxUnavailable", BeEquivalentTo(1))))
		Expect(find(objs, "Service")).NotTo(BeNil())
	})

	It("grants exactly the Lease verbs of the elector and pods list/watch", func() {
		role := typed[rbacv1.Role](find(objects("rbac.yaml"), "Role"))
		rules := map[string][]string{}
		for _, r := range role.Rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					rules[g+"/"+res] = append(rules[g+"/"+res], r.Verbs...)
				}
			}
			Expect(r.ResourceNames).To(BeEmpty())
		}
		Expect(rules).To(HaveLen(2))
		Expect(rules["coordination.k8s.io/leases"]).To(ConsistOf(electionVerbs()))
		Expect(rules["/pods"]).To(ConsistOf("list", "watch"))
		Expect(slices.Contains(rules["coordination.k8s.io/leases"], "delete")).To(BeFalse())
	})

	It("applies for real", func(ctx SpecContext) {
		Expect(apply(ctx, false, objects("namespace.yaml", "rbac.yaml")...)).To(Succeed())
		client := kubeapiserver.GinkgoClient(server.Config())
		Eventually(func() error {
			_, err := client.RbacV1().RoleBindings("dubbo-admin").Get(ctx, "dubbo-admin", metav1.GetOptions{})
			return err
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("lets the ServiceAccount's token run the election and the Engine's pod source, and nothing more", func(ctx SpecContext) {
		token, err := server.ServiceAccountToken(ctx, "dubbo-admin", "dubbo-admin")
		Expect(err).NotTo(HaveOccurred())
		rc := server.ConfigWithToken(token)
		sa := kubeapiserver.GinkgoClient(rc)
		db, err := tdb.Open(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = database.Close(db) })
		epochs, err := leader.NewEpochs(db)
		Expect(err).NotTo(HaveOccurred())
		cfg := klease.Config{Election: leader.Config{Name: "dubbo-admin", LeaseDuration: 2 * time.Second, RenewDeadline: 1400 * time.Millisecond,
			RetryPeriod: 200 * time.Millisecond, JitterFactor: 0.2, OpTimeout: 400 * time.Millisecond}, Namespace: "dubbo-admin"}

		By("the election: prepare, campaign, renew, observe, resign, force release")
		a, err := klease.New(sa, epochs, cfg)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Prepare(ctx)).To(Succeed())
		l, err := a.Campaign(ctx)
		Expect(err).NotTo(HaveOccurred())
		Consistently(l.Context().Done(), 3*cfg.Election.RetryPeriod).ShouldNot(BeClosed(), "renewals are allowed")
		rec, err := a.Leader(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Holder).To(Equal(a.Identity()))
		Expect(l.Resign(ctx)).To(Succeed())
		l, err = a.Campaign(ctx)
		Expect(err).NotTo(HaveOccurred())
		_, err = a.ForceRelease(ctx)
		Expect(err).NotTo(HaveOccurred())
		Eventually(l.Context().Done()).Should(BeClosed())
		Expect(l.Resign(ctx)).To(Succeed())

		By("the Engine's pods: list and watch")
		pods, err := sa.CoreV1().Pods("dubbo-admin").List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		w, err := sa.CoreV1().Pods("dubbo-admin").Watch(ctx, metav1.ListOptions{ResourceVersion: pods.ResourceVersion})
		Expect(err).NotTo(HaveOccurred())
		w.Stop()

		By("and nothing else")
		forbidden := map[string]error{}
		_, forbidden["list leases"] = sa.CoordinationV1().Leases("dubbo-admin").List(ctx, metav1.ListOptions{})
		forbidden["delete lease"] = sa.CoordinationV1().Leases("dubbo-admin").Delete(ctx, "dubbo-admin", metav1.DeleteOptions{})
		_, forbidden["get pod"] = sa.CoreV1().Pods("dubbo-admin").Get(ctx, "any", metav1.GetOptions{})
		_, forbidden["list pods elsewhere"] = sa.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		_, forbidden["get secret"] = sa.CoreV1().Secrets("dubbo-admin").Get(ctx, "dubbo-admin-database", metav1.GetOptions{})
		_, forbidden["leases elsewhere"] = sa.CoordinationV1().Leases("default").Get(ctx, "dubbo-admin", metav1.GetOptions{})
		for what, err := range forbidden {
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s: %v", what, err)
		}
	})
})
