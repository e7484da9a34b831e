package app_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

var _ = Describe("Every replica listed, on sqlite", Label("sqlite"), func() {
	It("lists leader and followers in /api/v1/replicas and leader status, the leader's line matching the lease; a stopped one is removed", func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		var reps []*app.Replica
		var bases []string
		for range 3 {
			rep, base := startReplica(ctx, fastConfig(db.Config.DSN))
			reps, bases = append(reps, rep), append(bases, base)
		}
		var view app.ReplicasInfo
		Eventually(func(g Gomega) {
			code, err := getJSON(bases[1]+"/api/v1/replicas", &view)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).To(Equal(http.StatusOK))
			g.Expect(view.Replicas).To(HaveLen(3))
			g.Expect(view.Leader.Holder).NotTo(BeEmpty())
			leaders := 0
			for _, r := range view.Replicas {
				g.Expect(r.Gone).To(BeFalse())
				g.Expect(r.Address).To(HavePrefix("127.0.0.1:"))
				g.Expect(r.Version).To(Equal(app.Version))
				if r.Leader {
					leaders++
					g.Expect(r.Identity).To(Equal(view.Leader.Holder))
					g.Expect(r.Role).To(Equal("Leading"))
					g.Expect(r.Term).To(Equal(view.Leader.Term))
				} else {
					g.Expect(r.Role).To(Equal("Candidate"))
				}
			}
			g.Expect(leaders).To(Equal(1))
		}).Should(Succeed())

		out, _, err := cli("leader", "status", "--db-dsn", db.Config.DSN)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`replicas\s+3 alive, 0 gone`))
		Expect(out).To(MatchRegexp(`(?m)^\* ` + regexp.QuoteMeta(view.Leader.Holder) + `\s+127\.0\.0\.1:\d+\s+Leading\s+` + itoa(int(view.Leader.Term)) + `\s`))
		Expect(strings.Count(out, "Candidate")).To(Equal(2))

		var st app.LeaseStatus
		out, _, err = cli("leader", "status", "--db-dsn", db.Config.DSN, "-o", "json")
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal([]byte(out), &st)).To(Succeed())
		Expect(st.Replicas).To(HaveLen(3))

		// A graceful stop removes the replica's row.
		var follower *app.Replica
		for i, r := range reps {
			if r.Runtime().Status().Role != "Leading" {
				follower = reps[i]
				break
			}
		}
		Expect(follower.Stop(ctx)).To(Succeed())
		Eventually(func(g Gomega) {
			_, err := getJSON(bases[0]+"/api/v1/replicas", &view)
			if err != nil { // bases[0] may be the one stopped
				_, err = getJSON(bases[2]+"/api/v1/replicas", &view)
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(view.Replicas).To(HaveLen(2))
		}).Should(Succeed())
	}, NodeTimeout(2*time.Minute))
})
