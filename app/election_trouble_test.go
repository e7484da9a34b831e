package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

// body GETs url and returns its status code and body.
func body(url string) (int, string) {
	GinkgoHelper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startReplica starts a replica of cfg and stops it when the spec ends.
func startReplica(ctx SpecContext, cfg app.Config) (*app.Replica, string) {
	GinkgoHelper()
	rep, err := app.NewReplica(cfg, GinkgoLogr)
	Expect(err).NotTo(HaveOccurred())
	Expect(rep.Start(ctx)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) { Expect(rep.Stop(ctx)).To(Succeed()) })
	return rep, "http://" + rep.HTTPAddress()
}

var _ = Describe("A replica that cannot take part in the election, on sqlite", Label("sqlite"), func() {
	It("says why in /api/v1/status and /api/v1/leader, counts the failures, and is not ready", func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		// A first replica creates every table, then stops: the file is
		// complete, and the next replica opens it read-only.
		first, err := app.NewReplica(fastConfig(db.Config.DSN), GinkgoLogr)
		Expect(err).NotTo(HaveOccurred())
		Expect(first.Start(ctx)).To(Succeed())
		Expect(first.Stop(ctx)).To(Succeed())

		_, base := startReplica(ctx, fastConfig("file:"+db.Config.DSN+"?mode=ro"))
		Eventually(func(g Gomega) {
			_, s := body(base + "/api/v1/status")
			var st map[string]any
			g.Expect(json.Unmarshal([]byte(s), &st)).To(Succeed())
			g.Expect(st).To(HaveKey("election"), s)
			g.Expect(st["election"]).To(HaveKeyWithValue("lastError", ContainSubstring("readonly")))
			g.Expect(st["election"]).To(HaveKeyWithValue("failedAttempts", BeNumerically(">=", 2)))
		}).Should(Succeed())

		_, s := body(base + "/api/v1/leader")
		var info map[string]any
		Expect(json.Unmarshal([]byte(s), &info)).To(Succeed())
		Expect(info["self"]).To(HaveKeyWithValue("electionError", ContainSubstring("readonly")))

		code, s := body(base + "/readyz")
		Expect(code).To(Equal(http.StatusServiceUnavailable), s)
		Expect(s).To(ContainSubstring("cannot take part in the election"))
		code, _ = body(base + "/healthz")
		Expect(code).To(Equal(http.StatusOK), "alive: restarting it would not mend the database")

		_, metrics := body(base + "/metrics")
		Expect(metrics).To(MatchRegexp(`dubbo_admin_leader_acquire_failures_total [1-9]`))
	}, NodeTimeout(2*time.Minute))
})

var _ = Describe("dubbo-admin leader status on a lease it cannot read, on sqlite", Label("sqlite"), func() {
	var dsn string
	exec := func(ctx SpecContext, sql string) {
		GinkgoHelper()
		gdb, err := database.Open(ctx, database.Config{Driver: database.SQLite, DSN: dsn})
		Expect(err).NotTo(HaveOccurred())
		defer database.Close(gdb)
		Expect(gdb.Exec(sql).Error).To(Succeed())
	}

	BeforeEach(func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		dsn = db.Config.DSN
		rep, err := app.NewReplica(fastConfig(dsn), GinkgoLogr)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Start(ctx)).To(Succeed())
		Eventually(func() bool { return rep.Runtime().Status().Role == "Leading" }).Should(BeTrue())
		Expect(rep.Stop(ctx)).To(Succeed())
	})

	It("exits non-zero when the lease table of an election that was held is gone", func(ctx SpecContext) {
		exec(ctx, `DROP TABLE leader_leases`)
		out, _, err := cli("leader", "status", "--db-dsn", dsn)
		Expect(err).To(HaveOccurred(), out)
		Expect(err.Error()).To(ContainSubstring("leader_leases"))
		noInternals(err.Error())
	})

	It("exits non-zero, naming the table, when the lease row cannot be read", func(ctx SpecContext) {
		exec(ctx, `DROP TABLE leader_leases`)
		exec(ctx, `CREATE TABLE leader_leases (name VARCHAR(128) PRIMARY KEY)`)
		out, _, err := cli("leader", "status", "--db-dsn", dsn)
		Expect(err).To(HaveOccurred(), out)
		Expect(err.Error()).To(ContainSubstring("table leader_leases"))
		noInternals(err.Error())
	})
})
