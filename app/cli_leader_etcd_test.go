package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/etcd"
)

// cliEnv runs the dubbo-admin command in-process with env as its
// environment.
func cliEnv(env map[string]string, args ...string) (string, string, error) {
	cmd := app.CLI{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}.Command()
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

var _ = Describe("dubbo-admin leader on etcd", Label("etcd"), Ordered, func() {
	var (
		server *etcdserver.Server
		dsn    string
		epochs *leader.Epochs
	)
	BeforeAll(func(ctx SpecContext) {
		server = etcdserver.Ginkgo("app")
		var gdb *gorm.DB
		dsn, gdb = sqliteDB(ctx)
		var err error
		epochs, err = leader.NewEpochs(gdb)
		Expect(err).NotTo(HaveOccurred())
	})
	args := func(cmd ...string) []string {
		return append(cmd, "--election-backend", "etcd", "--etcd-endpoints", server.Endpoint(), "--db-dsn", dsn)
	}

	It("shows the leader, its term and token and the queue, then deletes the leader key", func(ctx SpecContext) {
		out, _, err := cli(args("leader", "status")...)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`state\s+none`))

		var ls []leader.Leadership
		var es []leader.Elector
		for _, id := range []string{"replica-a", "replica-b"} {
			e, err := etcd.New(leader.DefaultName, etcd.Config{Endpoints: []string{server.Endpoint()}, TTL: 2 * time.Second, OpTimeout: 500 * time.Millisecond},
				epochs, etcd.WithIdentity(id))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(e.Close)
			Expect(e.Prepare(ctx)).To(Succeed())
			es = append(es, e)
		}
		won := campaignAll(ctx, es...)
		var first leader.Leadership
		Eventually(won).Should(Receive(&first))
		ls = append(ls, first)

		var st app.LeaseStatus
		Eventually(func() ([]string, error) {
			out, _, err := cli(args("leader", "status", "-o", "json")...)
			if err != nil {
				return nil, err
			}
			st = app.LeaseStatus{}
			return st.Candidates, json.Unmarshal([]byte(out), &st)
		}).Should(HaveLen(2))
		Expect(st.Backend).To(Equal("etcd"))
		Expect(st.State).To(Equal("held"))
		Expect(st.Holder).To(Equal(first.Term().Holder))
		Expect(st.Term).To(Equal(first.Term().Number))
		Expect(st.Token).To(MatchRegexp(`^etcd revision \d+$`))
		Expect(st.Candidates[0]).To(Equal(st.Holder))
		out, _, err = cli(args("leader", "status")...)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`backend\s+etcd`))
		Expect(out).To(MatchRegexp(`token\s+etcd revision`))

		out, _, err = cli(args("leader", "release", "--force")...)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("deleted the etcd leader key"))
		Eventually(first.Context().Done()).Should(BeClosed())
		var second leader.Leadership
		Eventually(won).Should(Receive(&second))
		Expect(second.Term().Number).To(BeNumerically(">", first.Term().Number))
		Expect(second.Resign(ctx)).To(Succeed())
		Expect(first.Resign(ctx)).To(Succeed())
	})

	It("reads the password from the environment and never prints it", func() {
		env := map[string]string{"ADMIN_ELECTION_ETCD_PASSWORD": "s3cret-pw", "ADMIN_ELECTION_ETCD_USERNAME": "admin"}
		out, errOut, err := cliEnv(env, "leader", "status", "--election-backend", "etcd", "--etcd-endpoints", "http://127.0.0.1:1",
			"--etcd-op-timeout", "200ms", "--db-dsn", dsn)
		Expect(err).To(HaveOccurred())
		for _, s := range []string{out, errOut, err.Error()} {
			Expect(s).NotTo(ContainSubstring("s3cret"))
		}
		_, _, err = cliEnv(env, "leader", "status", "--election-backend", "etcd", "--db-dsn", dsn)
		Expect(err).To(MatchError(ContainSubstring("etcd.endpoints")))
		cfg := app.Default()
		cfg.Election.Etcd.Password = "s3cret-pw"
		b, err := json.Marshal(cfg)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).NotTo(ContainSubstring("s3cret"))
	})
})
