package app_test

import (
	"regexp"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

var _ = Describe("dubbo-admin leader status --watch on sqlite", Label("sqlite"), func() {
	It("prints a line per event through a failover, and stops on a signal", func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		a, _ := startReplica(ctx, fastConfig(db.Config.DSN))
		Eventually(func() bool { return a.Runtime().Status().Role == "Leading" }).Should(BeTrue())
		idA := a.Runtime().Status().Term.Holder

		out, _, signals, done := cliBackground("leader", "status", "--watch", "--db-dsn", db.Config.DSN)
		contents := func() string { return string(out.Contents()) }
		q := regexp.QuoteMeta
		Eventually(contents).Should(MatchRegexp(`(?m)^\S+Z leader ` + q(idA) + ` term \d+ \(expires `))
		// The first view may already hold its address (the watch read after
		// the replica's first heartbeat), or the heartbeat adds it later.
		Eventually(contents).Should(MatchRegexp(`(?m)^\S+Z replica ` + q(idA) + ` (joined )?at 127\.0\.0\.1:\d+: Leading term \d+$`))

		_, baseB := startReplica(ctx, fastConfig(db.Config.DSN))
		var infoB app.LeaderInfo
		Expect(getJSON(baseB+"/api/v1/leader", &infoB)).To(Equal(200))
		idB := infoB.Self.Identity
		Eventually(contents).Should(MatchRegexp(`(?m)^\S+Z replica ` + q(idB) + ` joined at 127\.0\.0\.1:\d+: Candidate$`))

		Expect(a.Stop(ctx)).To(Succeed())
		Eventually(contents).WithTimeout(time.Minute).Should(MatchRegexp(`(?m)^\S+Z leader ` + q(idB) + ` term \d+ `))
		Eventually(contents).Should(MatchRegexp(`(?m)^\S+Z replica ` + q(idA) + ` left `))
		Eventually(contents).Should(MatchRegexp(`(?m)^\S+Z replica ` + q(idB) + ` at 127\.0\.0\.1:\d+: Leading term \d+$`))

		signals <- syscall.SIGINT
		Eventually(done).Should(Receive(BeNil()))
	}, NodeTimeout(2*time.Minute))

	It("prepares the election once, not on every refresh: a lease table dropped while watching is not created again", func(ctx SpecContext) {
		dsn, g := sqliteDB(ctx)
		out, _, signals, done := cliBackground("leader", "status", "--watch", "--db-dsn", dsn)
		Eventually(func() string { return string(out.Contents()) }).Should(ContainSubstring("has never been held"))
		Expect(g.Migrator().DropTable("leader_leases")).To(Succeed())
		// The watch refreshes every second (the default retry period); each
		// Prepare would migrate the table back.
		Consistently(func() bool { return g.Migrator().HasTable("leader_leases") }).
			WithTimeout(4 * time.Second).Should(BeFalse())
		signals <- syscall.SIGINT
		Eventually(done).Should(Receive(BeNil()))
	}, NodeTimeout(time.Minute))
})
