package kubeapiserver_test

import (
	"context"
	"os"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/apache/dubbo-admin/internal/kubeapiserver"
)

func TestVersionMatchesToolsModule(t *testing.T) {
	data, err := os.ReadFile("../../test/kube/tools/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)`).FindSubmatch(data)
	if m == nil || string(m[1]) != kubeapiserver.Version {
		t.Fatalf("test/kube/tools/go.mod requires k8s.io/kubernetes %q; kubeapiserver.Version is %q", m, kubeapiserver.Version)
	}
}

func TestServerRestartsAndAuthenticatesServiceAccounts(t *testing.T) {
	s := kubeapiserver.Testing(t, "internal/kubeapiserver")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts("kept").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	s.StopAPIServer()
	if err := s.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace after an apiserver restart: %v", err)
	}

	token, err := s.ServiceAccountToken(ctx, "kept", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(s.ConfigWithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sa.CoreV1().Pods("kept").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("a service account without a role listed pods: err = %v, want forbidden", err)
	}
}
