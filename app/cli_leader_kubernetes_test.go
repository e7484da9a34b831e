package app_test

import (
	"encoding/json"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
)

var _ = Describe("dubbo-admin leader on Kubernetes Leases", Label("kubernetes"), Ordered, func() {
	var (
		server     *kubeapiserver.Server
		kubeconfig string
		dsn        string
		epochs     *leader.Epochs
	)
	BeforeAll(func(ctx SpecContext) {
		server = kubeapiserver.Ginkgo("app")
		var gdb *gorm.DB
		dsn, gdb = sqliteDB(ctx)
		var err error
		epochs, err = leader.NewEpochs(gdb)
		Expect(err).NotTo(HaveOccurred())
		client := kubeapiserver.GinkgoClient(server.Config())
		_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "admin"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		kubeconfig = filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		Expect(server.WriteKubeconfig(kubeconfig, "")).To(Succeed())
	})
	args := func(cmd ...string) []string {
		return append(cmd, "--election-backend", "kubernetes", "--election-kubeconfig", server.Kubeconfig(),
			"--election-namespace", "admin", "--db-dsn", dsn)
	}

	It("shows the Lease's holder, term and token, then releases it so another replica leads", func(ctx SpecContext) {
		out, _, err := cli(args("leader", "status")...)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`state\s+none`))
		Expect(out).To(MatchRegexp(`backend\s+kubernetes`))

		cfg := klease.Config{Election: leader.Config{Name: leader.DefaultName, LeaseDuration: 2 * time.Second, RenewDeadline: 1400 * time.Millisecond,
			RetryPeriod: 200 * time.Millisecond, JitterFactor: 0.2, OpTimeout: 400 * time.Millisecond}, Namespace: "admin"}
		var es []leader.Elector
		for _, id := range []string{"replica-a", "replica-b"} {
			e, err := klease.New(kubeapiserver.GinkgoClient(server.Config()), epochs, cfg, klease.WithIdentity(id))
			Expect(err).NotTo(HaveOccurred())
			Expect(e.Prepare(ctx)).To(Succeed())
			es = append(es, e)
		}
		won := campaignAll(ctx, es...)
		var first leader.Leadership
		Eventually(won).Should(Receive(&first))

		out, _, err = cli(args("leader", "status", "-o", "json")...)
		Expect(err).NotTo(HaveOccurred())
		var st app.LeaseStatus
		Expect(json.Unmarshal([]byte(out), &st)).To(Succeed())
		Expect(st.Backend).To(Equal("kubernetes"))
		Expect(st.Lease).To(Equal("admin/" + leader.DefaultName))
		Expect(st.State).To(Equal("held"))
		Expect(st.Holder).To(Equal(first.Term().Holder))
		Expect(st.Term).To(Equal(first.Term().Number))
		Expect(st.Token).To(MatchRegexp(`^lease admin/dubbo-admin resourceVersion \d+$`))
		out, _, err = cli(args("leader", "status")...)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`lease\s+admin/dubbo-admin`))
		Expect(out).To(MatchRegexp(`token\s+lease admin/dubbo-admin resourceVersion`))

		out, _, err = cli(args("leader", "release", "--force")...)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("released lease admin/dubbo-admin held by " + first.Term().Holder))
		Eventually(first.Context().Done()).Should(BeClosed())
		var second leader.Leadership
		Eventually(won).Should(Receive(&second))
		Expect(second.Term().Number).To(BeNumerically(">", first.Term().Number))
		Expect(second.Resign(ctx)).To(Succeed())
		Expect(first.Resign(ctx)).To(Succeed())
		out, _, err = cli(args("leader", "release", "--force")...)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("has no holder"))
	})

	It("checks the Lease's permissions first (Prepare), naming the verbs a token without the Role lacks", func(ctx SpecContext) {
		client := kubeapiserver.GinkgoClient(server.Config())
		_, err := client.CoreV1().ServiceAccounts("admin").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "norole"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		token, err := server.ServiceAccountToken(ctx, "admin", "norole")
		Expect(err).NotTo(HaveOccurred())
		noRole := filepath.Join(GinkgoT().TempDir(), "norole.kubeconfig")
		Expect(server.WriteKubeconfig(noRole, token)).To(Succeed())
		for _, cmd := range [][]string{{"leader", "status"}, {"leader", "release", "--force"}} {
			out, errOut, err := cli(append(cmd, "--election-backend", "kubernetes", "--election-kubeconfig", noRole,
				"--election-namespace", "admin", "--db-dsn", dsn)...)
			Expect(err).To(MatchError(klease.ErrForbidden), "%v", cmd)
			Expect(err.Error()).To(ContainSubstring("get, create, update"))
			for _, s := range []string{out, errOut, err.Error()} {
				Expect(s).NotTo(ContainSubstring(token))
			}
		}
	})

	It("names the broken election.kubernetes setting", func() {
		_, _, err := cli("leader", "status", "--election-backend", "kubernetes", "--election-kubeconfig", "/nonexistent", "--db-dsn", dsn)
		Expect(err).To(MatchError(ContainSubstring("election.kubernetes: invalid leader election config: namespace")))
		_, _, err = cli("leader", "status", "--election-backend", "kubernetes", "--election-kubeconfig", "/nonexistent",
			"--election-namespace", "admin", "--db-dsn", dsn)
		Expect(err).To(MatchError(ContainSubstring("kubeconfig \"/nonexistent\"")))
		c := app.Default()
		c.Election.Backend = app.ElectionKubernetes
		c.Election.Kubernetes = app.KubernetesElectionConfig{Namespace: "admin", Kubeconfig: kubeconfig}
		Expect(c.Validate()).To(Succeed())
		c.Election.LeaseDuration = app.Duration(10500 * time.Millisecond)
		Expect(c.Validate()).To(MatchError(ContainSubstring("leaseDuration is 10.5s: a Lease holds whole seconds")))
		_, _, err = cli("leader", "status", "--election-backend", "zookeeper", "--db-dsn", dsn)
		Expect(err).To(MatchError(ContainSubstring("election.backend \"zookeeper\"")))
	})
})
