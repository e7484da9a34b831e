package replicas_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/test/harness"
)

const etcdRounds = 3

// Three replica processes electing through etcd (the store and the terms
// in MariaDB), with faults injected into the leader and into etcd. Every
// round checks R1 (no two terms' leader components at once, from the
// replicas' logs) and R2 (no write of an older term after a newer term's
// first write, on the database-ordered write log).
var _ = Describe("Replica processes on etcd", Label("e2e", "etcd"), Ordered, func() {
	var (
		k    *cluster
		etcd *etcdserver.Server
	)
	ttl := harness.EtcdTTL

	BeforeAll(func(ctx SpecContext) {
		db := provision(database.MySQL)
		etcd = etcdserver.Ginkgo(suiteName)
		k = startCluster(ctx, "etcd", harness.ProcessConfig{Database: db, Etcd: &harness.EtcdElection{Addr: etcd.Addr(), Proxied: true}})
	}, NodeTimeout(5*time.Minute))

	It("replaces a leader killed with SIGKILL within the TTL and a keep-alive interval", func(ctx SpecContext) {
		k.killRounds(ctx, etcdRounds)
	}, NodeTimeout(5*time.Minute))

	It("hands over at once when the leader gets SIGTERM", func(ctx SpecContext) {
		k.termRounds(ctx, etcdRounds)
	}, NodeTimeout(5*time.Minute))

	It("replaces a leader frozen with SIGSTOP past the TTL, which steps down after SIGCONT", func(ctx SpecContext) {
		k.stopRounds(ctx, etcdRounds, ttl, 5*ttl, func(_, _ int, _ time.Time, err error) time.Duration {
			Expect(err).NotTo(HaveOccurred(), "a successor is elected while the leader is frozen")
			return 0
		})
	}, NodeTimeout(5*time.Minute))

	It("demotes every replica while etcd is unreachable, none exits, and a leader returns once it is back", func(ctx SpecContext) {
		k.fault(ctx, "etcd unreachable", 1, func(int, time.Time) time.Duration {
			for i := range k.N() {
				k.Process(i).EtcdProxy.Pause()
			}
			k.noLeader(ctx, "every replica demotes")
			Consistently(func() bool {
				for i := range k.N() {
					if !k.Process(i).Alive() {
						return false
					}
				}
				return true
			}, ttl).Should(BeTrue(), "no replica exits")
			for i := range k.N() {
				k.Process(i).EtcdProxy.Resume()
			}
			return 0
		}, nil)
	}, NodeTimeout(5*time.Minute))

	It("demotes the leader when etcd restarts, and elects one with a higher term once it is back", func(ctx SpecContext) {
		k.fault(ctx, "etcd restart", 1, func(int, time.Time) time.Duration {
			etcd.Kill()
			k.noLeader(ctx, "every replica demotes")
			Expect(etcd.Restart(ctx)).To(Succeed())
			return 0
		}, func(int) { k.everyAlive() })
	}, NodeTimeout(5*time.Minute))
})
