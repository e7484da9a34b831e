package replicas_test

import (
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/test/harness"
)

const kubeRounds = 3

// Three replica processes elected by a Kubernetes Lease on a real
// kube-apiserver (their store on SQLite). Every replica reaches the
// apiserver through one fault proxy, so the suite can take it away from all
// of them at once. After every round: one leader at a time (the timeline of
// leadership intervals, R1), the write log ordered by term (R2), and the
// store equal to the source.
var _ = Describe("Replica processes elected by a Kubernetes Lease", Label("e2e", "kubernetes"), Ordered, func() {
	var (
		server *kubeapiserver.Server
		proxy  *faultproxy.Proxy
		k      *cluster
	)
	lease := harness.FastTimings().LeaseDuration

	BeforeAll(func(ctx SpecContext) {
		server = kubeapiserver.Ginkgo(suiteName)
		client := kubeapiserver.GinkgoClient(server.Config())
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "replicas"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		proxy, err = faultproxy.Start(server.Addr())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(proxy.Close)
		kubeconfig := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		Expect(server.WriteKubeconfig(kubeconfig, "", proxy.Addr())).To(Succeed())

		k = startCluster(ctx, "kubernetes", harness.ProcessConfig{Database: provision(database.SQLite),
			ExtraArgs: []string{"--election-backend", "kubernetes", "--election-kubeconfig", kubeconfig, "--election-namespace", "replicas"}})
	}, NodeTimeout(5*time.Minute))

	It("replaces a leader killed with SIGKILL after about one lease duration", func(ctx SpecContext) {
		k.killRounds(ctx, kubeRounds)
	}, NodeTimeout(5*time.Minute))

	It("replaces a leader frozen with SIGSTOP past its lease; the resumed one steps down", func(ctx SpecContext) {
		// SQLite's write lock belongs to the frozen process: if it froze
		// inside a transaction no successor can write until it resumes (see
		// processes_test.go), so the election is only waited for.
		k.stopRounds(ctx, kubeRounds, lease, 3*lease, func(_, _ int, _ time.Time, err error) time.Duration {
			if err != nil {
				AddReportEntry("SIGSTOP (kubernetes)", "no successor while the leader was frozen: it held SQLite's lock")
			}
			return 0
		})
	}, NodeTimeout(5*time.Minute))

	It("hands over at once when the leader gets SIGTERM", func(ctx SpecContext) {
		k.termRounds(ctx, kubeRounds)
	}, NodeTimeout(5*time.Minute))

	It("demotes every replica while the apiserver is unreachable, none exits, and a leader returns", func(ctx SpecContext) {
		for n := 1; n <= kubeRounds; n++ {
			k.fault(ctx, "apiserver unreachable", n, func(int, time.Time) time.Duration {
				proxy.Pause()
				k.noLeader(ctx, "nobody can be sure it leads")
				Consistently(ctx, func() ([]int, error) {
					idx, _, err := k.Leaders(ctx)
					return idx, err
				}).WithTimeout(lease).WithPolling(100 * time.Millisecond).Should(BeEmpty())
				k.everyAlive()
				proxy.Resume()
				return 0
			}, nil)
		}
		k.everyAlive()
	}, NodeTimeout(5*time.Minute))

	It("elects a leader again after the apiserver restarts", func(ctx SpecContext) {
		for n := 1; n <= kubeRounds; n++ {
			k.fault(ctx, "apiserver restart", n, func(int, time.Time) time.Duration {
				server.StopAPIServer()
				Expect(server.StartAPIServer(ctx)).To(Succeed())
				return 0
			}, nil)
		}
		k.everyAlive()
	}, NodeTimeout(5*time.Minute))
})
