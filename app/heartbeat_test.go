package app_test

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/examples/component/heartbeat"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

var _ = Describe("The example heartbeat component in a replica", Label("sqlite"), func() {
	It("is left out by default and runs on the leader when heartbeat.interval is set", func(ctx SpecContext) {
		Expect(app.Default().Heartbeat.Interval).To(BeZero())
		cfg := app.Default()
		cfg.Heartbeat.Interval = app.Duration(-time.Second)
		Expect(cfg.Validate()).To(MatchError(ContainSubstring("heartbeat.interval")))

		db := dbtest.Ginkgo("app", database.SQLite)
		cfg = fastConfig(db.Config.DSN)
		cfg.Heartbeat.Interval = app.Duration(50 * time.Millisecond)
		rep, err := app.NewReplica(cfg, GinkgoLogr)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Start(ctx)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(rep.Stop(ctx)).To(Succeed()) })
		base := "http://" + rep.HTTPAddress()

		Eventually(func(g Gomega) {
			var list app.ResourceList
			code, err := getJSON(base+"/api/v1/resources/"+heartbeat.Kind, &list)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).To(Equal(http.StatusOK))
			g.Expect(list.Items).To(HaveLen(1))
			st := rep.Runtime().Status()
			g.Expect(list.Items[0].Term).To(Equal(st.Term.Number), "written with the leader's term")
			var spec heartbeat.Spec
			g.Expect(json.Unmarshal(list.Items[0].Spec, &spec)).To(Succeed())
			g.Expect(spec.Holder).To(Equal(st.Leader))
		}).WithTimeout(time.Minute).Should(Succeed())
	}, NodeTimeout(3*time.Minute))
})
