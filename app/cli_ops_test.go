package app_test

import (
	"bytes"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// noInternals is what no error a user sees may carry: fx's and dig's
// wording, or a path into the source tree.
func noInternals(msg string) {
	GinkgoHelper()
	for _, bad := range []string{"could not build", "received non-nil error", "fx.", "dig", ".go:", "/app/", "\n"} {
		Expect(msg).NotTo(ContainSubstring(bad), "in %q", msg)
	}
}

var _ = Describe("Errors a user sees", Label("quick"), func() {
	newReplicaErr := func(cfg app.Config) (error, string) {
		GinkgoHelper()
		var logs bytes.Buffer
		log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 0})
		_, err := app.NewReplica(cfg, log)
		return err, logs.String()
	}

	It("names an unreachable database in one line, without fx internals or source paths", func() {
		cfg := fastConfig("unused")
		cfg.Database = database.Config{Driver: database.Postgres, DSN: "postgres://admin:s3cret@127.0.0.1:1/admin?sslmode=disable&connect_timeout=2"}
		err, logs := newReplicaErr(cfg)
		Expect(err).To(HaveOccurred())
		noInternals(err.Error())
		Expect(err.Error()).To(ContainSubstring("127.0.0.1:1"))
		Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		Expect(logs).NotTo(ContainSubstring("could not build"))
	})

	It("says a directory given as the SQLite DSN is a directory", func() {
		dir := GinkgoT().TempDir()
		cfg := fastConfig(dir)
		err, _ := newReplicaErr(cfg)
		Expect(err).To(MatchError(app.ErrInvalidConfig))
		Expect(err.Error()).To(ContainSubstring("is a directory"))
		Expect(err.Error()).To(ContainSubstring("database.dsn"))
		noInternals(err.Error())
		_, _, err = cli("leader", "status", "--db-dsn", dir)
		Expect(err).To(MatchError(ContainSubstring("is a directory")))
	})

	It("names the file, every unknown key by its path, and the nearest known key", func() {
		path := filepath.Join(GinkgoT().TempDir(), "admin.yaml")
		Expect(os.WriteFile(path, []byte("electon:\n  name: x\nhttp:\n  adress: 127.0.0.1:9\nlog: {level: info}\n"), 0o644)).To(Succeed())
		_, _, err := cli("leader", "status", "--config", path)
		Expect(err).To(MatchError(app.ErrInvalidConfig))
		Expect(err.Error()).To(ContainSubstring(path))
		Expect(err.Error()).To(ContainSubstring(`unknown key "electon" (did you mean "election"?)`))
		Expect(err.Error()).To(ContainSubstring(`unknown key "http.adress" (did you mean "http.address"?)`))
		Expect(err.Error()).NotTo(ContainSubstring("JSON"))
	})

	It("states the limits of --replicas in --help", func() {
		out, _, err := cli("run", "--help")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`--replicas .*1\.\.32`))
	})
})

var _ = Describe("dubbo-admin leader status output on sqlite", Label("sqlite"), func() {
	var (
		dsn   string
		lease *leader.Lease
	)

	BeforeEach(func(ctx SpecContext) {
		var g *gorm.DB
		dsn, g = sqliteDB(ctx)
		var err error
		lease, err = leader.NewLease(g)
		Expect(err).NotTo(HaveOccurred())
		Expect(lease.Migrate(ctx)).To(Succeed())
		_, err = lease.TryAcquire(ctx, leader.DefaultName, "replica-a", time.Minute)
		Expect(err).NotTo(HaveOccurred())
		// Times on a round 100 ms, so that a format that drops trailing
		// zeros shows.
		Expect(g.Exec(`UPDATE leader_leases SET acquired_at = 1800000000100, renewed_at = 1800000000100`).Error).To(Succeed())
	})

	It("prints every timestamp with milliseconds, trailing zeros kept", func() {
		out, _, err := cli("leader", "status", "--db-dsn", dsn)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`acquired\s+2027-01-15T08:00:00\.100Z`))
		Expect(out).To(MatchRegexp(`renewed\s+2027-01-15T08:00:00\.100Z`))
	})

	It("says an election that was never held has never been held, and lists the ones that were", func() {
		out, _, err := cli("leader", "status", "--db-dsn", dsn, "--election-name", "dubbo-admn")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring(`election "dubbo-admn" has never been held`))
		Expect(out).To(ContainSubstring(`dubbo-admin`))
	})
})

var _ = Describe("Console logs", Label("quick"), func() {
	It("print times as RFC 3339, not a bare time of day", func() {
		var buf bytes.Buffer
		log, flush, err := app.NewLogger(app.LogConfig{Format: app.LogConsole, Level: "info"}, &buf)
		Expect(err).NotTo(HaveOccurred())
		log.Info("lease acquired", "expires", time.UnixMilli(1_800_000_000_100).UTC())
		flush()
		Expect(buf.String()).To(ContainSubstring(`"expires": "2027-01-15T08:00:00.100Z"`))
	})
})
