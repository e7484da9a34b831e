package replicas_test

import (
	"context"
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
		c      *harness.Processes
		src    *harness.Source
		term   int64
		exempt []int64
		round  int
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

		db := provision(database.SQLite)
		src = newSource()
		c, err = harness.StartProcesses(ctx, 3, harness.ProcessConfig{Binary: binary(ctx), Database: db, Source: src, Dir: GinkgoT().TempDir(),
			ExtraArgs: []string{"--election-backend", "kubernetes", "--election-kubeconfig", kubeconfig, "--election-namespace", "replicas"}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(c.Close()).To(Succeed()) })
		_, term = waitProcessLeader(ctx, c, 0, time.Now())
		checkProcesses(ctx, c, src)
	}, NodeTimeout(5*time.Minute))

	// fault is processes_test.go's round on this cluster.
	fault := func(ctx context.Context, name string, n int, inject func(old int, start time.Time), after func(old int)) {
		GinkgoHelper()
		round++
		old, ok, _ := processLeaderIndex(ctx, c, term)
		Expect(ok).To(BeTrue(), "replica of term %d leads", term)
		stopChurn := src.Churn("churn.yaml", 20*time.Millisecond)
		Eventually(ctx, func() (map[int64]int64, error) { return c.WriteLog.TermsWritten(ctx) }).
			WithTimeout(convergeBound).WithPolling(poll).Should(HaveKeyWithValue(term, BeNumerically(">", 5)))
		start := time.Now()
		inject(old, start)
		mutate(src, round)
		_, newTerm, back := waitProcessLeaderAfter(ctx, c, term, start)
		Expect(newTerm).To(BeNumerically(">", term))
		Expect(stopChurn()).To(Succeed())
		if after != nil {
			after(old)
		}
		conv := checkProcesses(ctx, c, src, exempt...)
		report(name+" (kubernetes)", n, map[string]time.Duration{"leader back": back, "store converged": conv})
		term = newTerm
	}
	everyAlive := func() {
		GinkgoHelper()
		for i := range c.N() {
			Expect(c.Process(i).Alive()).To(BeTrue(), "replica %d keeps running", i)
		}
	}

	It("replaces a leader killed with SIGKILL after about one lease duration", func(ctx SpecContext) {
		for n := 1; n <= kubeRounds; n++ {
			fault(ctx, "process SIGKILL", n, func(old int, _ time.Time) {
				Expect(c.Kill(old)).To(Succeed())
			}, func(old int) {
				Expect(c.Restart(ctx, old)).To(Succeed())
			})
		}
	}, NodeTimeout(5*time.Minute))

	It("replaces a leader frozen with SIGSTOP past its lease; the resumed one steps down", func(ctx SpecContext) {
		for n := 1; n <= kubeRounds; n++ {
			var frozen int64
			fault(ctx, "process SIGSTOP", n, func(old int, start time.Time) {
				frozen = term
				exempt = append(exempt, frozen)
				Expect(c.Stop(old)).To(Succeed())
				// SQLite's write lock belongs to the frozen process: if it froze
				// inside a transaction no successor can write until it resumes
				// (see processes_test.go), so wait for the election only.
				wctx, cancel := context.WithTimeout(ctx, 3*lease)
				_, _, err := c.WaitForLeader(wctx, frozen)
				cancel()
				if err != nil {
					AddReportEntry("SIGSTOP (kubernetes)", "no successor while the leader was frozen: it held SQLite's lock")
				}
				Eventually(func() time.Duration { return time.Since(start) }).WithTimeout(4 * lease).Should(BeNumerically(">", lease+500*time.Millisecond))
				Expect(c.Cont(old)).To(Succeed())
			}, func(old int) {
				Expect(c.Process(old).Alive()).To(BeTrue(), "the resumed replica keeps running")
				Eventually(ctx, func() (bool, error) {
					info, err := c.Info(ctx, old)
					return info.Self.Leading && info.Self.Term == frozen, err
				}).WithTimeout(leaderBound).WithPolling(poll).Should(BeFalse(), "the resumed replica steps down")
			})
		}
	}, NodeTimeout(5*time.Minute))

	It("hands over at once when the leader gets SIGTERM", func(ctx SpecContext) {
		for n := 1; n <= kubeRounds; n++ {
			fault(ctx, "process SIGTERM", n, func(old int, _ time.Time) {
				Expect(c.Term(old)).To(Succeed())
			}, func(old int) {
				Eventually(c.Process(old).Exited()).WithTimeout(leaderBound).Should(BeClosed())
				Expect(c.Process(old).ExitError()).NotTo(HaveOccurred(), "a graceful stop exits with status 0")
				Expect(c.Restart(ctx, old)).To(Succeed())
			})
		}
	}, NodeTimeout(5*time.Minute))

	It("demotes every replica while the apiserver is unreachable, none exits, and a leader returns", func(ctx SpecContext) {
		for n := 1; n <= kubeRounds; n++ {
			fault(ctx, "apiserver unreachable", n, func(_ int, _ time.Time) {
				proxy.Pause()
				Eventually(ctx, func() ([]int, error) {
					idx, _, err := c.Leaders(ctx)
					return idx, err
				}).WithTimeout(leaderBound).WithPolling(poll).Should(BeEmpty(), "nobody can be sure it leads")
				Consistently(ctx, func() ([]int, error) {
					idx, _, err := c.Leaders(ctx)
					return idx, err
				}).WithTimeout(lease).WithPolling(100 * time.Millisecond).Should(BeEmpty())
				everyAlive()
				proxy.Resume()
			}, nil)
		}
		everyAlive()
	}, NodeTimeout(5*time.Minute))

	It("elects a leader again after the apiserver restarts", func(ctx SpecContext) {
		for n := 1; n <= kubeRounds; n++ {
			fault(ctx, "apiserver restart", n, func(_ int, _ time.Time) {
				server.StopAPIServer()
				Expect(server.StartAPIServer(ctx)).To(Succeed())
			}, nil)
		}
		everyAlive()
	}, NodeTimeout(5*time.Minute))
})
