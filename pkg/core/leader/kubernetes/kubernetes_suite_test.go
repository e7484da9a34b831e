package kubernetes_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/internal/testenv"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

const suite = "pkg/core/leader/kubernetes"

// namespace holds the suite's Leases.
const namespace = "election"

var (
	server *kubeapiserver.Server
	tdb    *dbtest.DB // the store's database, where terms are minted
)

func TestKubernetes(t *testing.T) {
	testenv.RunSpecs(t, "Kubernetes Lease election")
}

// startServer starts the apiserver for an Ordered container (BeforeAll), so
// that specs which need none run without it.
func startServer() {
	server = kubeapiserver.Ginkgo(suite)
	tdb = dbtest.Ginkgo(suite, database.SQLite)
	client := kubeapiserver.GinkgoClient(server.Config())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
}

// leakCheck fails the spec if it left a goroutine behind (the specs' clients
// close their connections at cleanup: kubeapiserver.GinkgoClient).
func leakCheck() {
	ignore := goleak.IgnoreCurrent()
	DeferCleanup(func() {
		Eventually(func() error { return goleak.Find(ignore) }).WithTimeout(30 * time.Second).Should(Succeed())
	})
}
