package app_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// cli runs the dubbo-admin command in-process with an empty environment
// and returns its stdout, stderr and error.
func cli(args ...string) (string, string, error) { return cliEnv(nil, args...) }

// sqliteDB is a fresh SQLite database of the suite: its DSN, and a pool on
// it closed at cleanup.
func sqliteDB(ctx context.Context) (string, *gorm.DB) {
	GinkgoHelper()
	db := dbtest.Ginkgo("app", database.SQLite)
	g, err := db.Open(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = database.Close(g) })
	return db.Config.DSN, g
}

// campaignAll campaigns with every elector until cleanup, which waits for
// them; the channel yields each win.
func campaignAll(ctx context.Context, es ...leader.Elector) <-chan leader.Leadership {
	won := make(chan leader.Leadership, len(es))
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l, err := e.Campaign(cctx); err == nil {
				won <- l
			}
		}()
	}
	DeferCleanup(func() { cancel(); wg.Wait() })
	return won
}

var _ = Describe("dubbo-admin leader on sqlite", Label("sqlite"), func() {
	var (
		dsn   string
		lease *leader.Lease
	)

	BeforeEach(func(ctx SpecContext) {
		var gdb *gorm.DB
		dsn, gdb = sqliteDB(ctx)
		var err error
		lease, err = leader.NewLease(gdb)
		Expect(err).NotTo(HaveOccurred())
	})

	status := func() app.LeaseStatus {
		GinkgoHelper()
		out, _, err := cli("leader", "status", "--db-dsn", dsn, "-o", "json")
		Expect(err).NotTo(HaveOccurred())
		var st app.LeaseStatus
		Expect(json.Unmarshal([]byte(out), &st)).To(Succeed())
		return st
	}

	It("says there is no lease before any replica ran", func() {
		out, _, err := cli("leader", "status", "--db-dsn", dsn)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`state\s+none`))
		out, _, err = cli("leader", "release", "--force", "--db-dsn", dsn)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("nothing to release"))
	})

	It("shows the holder, the term and the expiry, then force-releases the lease", func(ctx SpecContext) {
		Expect(lease.Migrate(ctx)).To(Succeed())
		_, err := lease.TryAcquire(ctx, leader.DefaultName, "replica-a", time.Minute)
		Expect(err).NotTo(HaveOccurred())

		out, _, err := cli("leader", "status", "--db-dsn", dsn)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`state\s+held`))
		Expect(out).To(MatchRegexp(`holder\s+replica-a`))
		Expect(out).To(MatchRegexp(`term\s+1`))
		Expect(out).To(MatchRegexp(`expires\s+\S+ \(in `))
		Expect(out).To(MatchRegexp(`failover\s+lease-only \(-\): a crashed holder is replaced when its lease expires`))

		st := status()
		Expect(st.State).To(Equal("held"))
		Expect(st.Holder).To(Equal("replica-a"))
		Expect(st.Term).To(BeEquivalentTo(1))
		Expect(st.ExpiresAt).To(BeTemporally(">", st.DatabaseNow))

		_, _, err = cli("leader", "release", "--db-dsn", dsn)
		Expect(err).To(MatchError(ContainSubstring("--force")))
		Expect(status().State).To(Equal("held"))

		out, _, err = cli("leader", "release", "--force", "--db-dsn", dsn)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring(`released lease "dubbo-admin" held by replica-a (term 1)`))
		Expect(status().State).To(Equal("free"))

		out, _, err = cli("leader", "release", "--force", "--db-dsn", dsn)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("already free"))

		rec, err := lease.TryAcquire(ctx, leader.DefaultName, "replica-b", time.Minute)
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Term).To(BeEquivalentTo(2))
		Expect(status().Holder).To(Equal("replica-b"))
	})

	It("reads the election named by --election-name", func(ctx SpecContext) {
		Expect(lease.Migrate(ctx)).To(Succeed())
		_, err := lease.TryAcquire(ctx, "other", "replica-c", time.Minute)
		Expect(err).NotTo(HaveOccurred())
		out, _, err := cli("leader", "status", "--db-dsn", dsn, "--election-name", "other")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`holder\s+replica-c`))
		Expect(status().State).To(Equal("none"))
	})
})

var _ = Describe("dubbo-admin CLI", Label("quick"), func() {
	It("refuses to create an SQLite database that does not exist", func() {
		path := filepath.Join(GinkgoT().TempDir(), "absent.db")
		_, _, err := cli("leader", "status", "--db-dsn", path)
		Expect(err).To(MatchError(app.ErrNoDatabase))
		_, statErr := os.Stat(path)
		Expect(os.IsNotExist(statErr)).To(BeTrue())
	})

	DescribeTable("refuses to create an SQLite database that does not exist, whatever the election backend",
		func(backend ...string) {
			dir := GinkgoT().TempDir()
			path := filepath.Join(dir, "absent.db")
			// An apiserver that does not answer: the file must be refused first.
			Expect(os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: test, user: {token: t0ken}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
`), 0o600)).To(Succeed())
			backend = append(backend, "--election-kubeconfig", filepath.Join(dir, "kubeconfig"))
			for _, cmd := range [][]string{{"leader", "status"}, {"leader", "release", "--force"}} {
				_, _, err := cli(append(append(cmd, "--db-dsn", path), backend...)...)
				Expect(err).To(MatchError(app.ErrNoDatabase))
				Expect(err.Error()).To(ContainSubstring(path))
				_, statErr := os.Stat(path)
				Expect(os.IsNotExist(statErr)).To(BeTrue(), "%v created %s", cmd, path)
			}
		},
		Entry("sql", "--election-backend", "sql"),
		Entry("etcd", "--election-backend", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-op-timeout", "200ms"),
		Entry("kubernetes", "--election-backend", "kubernetes", "--election-namespace", "admin"),
	)

	It("never prints a DSN password when the database does not answer", func() {
		_, errOut, err := cli("leader", "status", "--db-driver", "postgres",
			"--db-dsn", "postgres://admin:s3cret@127.0.0.1:1/admin?sslmode=disable&connect_timeout=2")
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		Expect(errOut).NotTo(ContainSubstring("s3cret"))
	})

	It("prints its version", func() {
		out, _, err := cli("version")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(HavePrefix("dubbo-admin " + app.Version + " ("))
	})

	It("validates run's configuration before starting anything", func() {
		_, errOut, err := cli("run", "--store", "memory", "--replicas", "2")
		Expect(err).To(MatchError(app.ErrInvalidConfig))
		Expect(errOut).To(ContainSubstring(`store.backend "memory"`))
	})
})
