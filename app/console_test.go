package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/membership"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

func getBody(url string) (code int, contentType, body string) {
	GinkgoHelper()
	resp, err := http.Get(url)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// startLeading starts a replica on dsn and waits until it leads.
func startLeading(ctx context.Context, dsn string) (*app.Replica, string) {
	GinkgoHelper()
	rep, err := app.NewReplica(fastConfig(dsn), GinkgoLogr)
	Expect(err).NotTo(HaveOccurred())
	Expect(rep.Start(ctx)).To(Succeed())
	base := "http://" + rep.HTTPAddress()
	Eventually(func(g Gomega) {
		var info app.LeaderInfo
		_, err := getJSON(base+"/api/v1/leader", &info)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(info.Self.Leading).To(BeTrue())
	}).WithTimeout(time.Minute).Should(Succeed())
	return rep, base
}

var _ = Describe("The console on sqlite", Label("sqlite"), func() {
	It("serves the page at / and /cluster, the term log, the counts and the cluster's status", func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		rep, base := startLeading(ctx, db.Config.DSN)
		stopped := false
		DeferCleanup(func(ctx SpecContext) {
			if !stopped {
				Expect(rep.Stop(ctx)).To(Succeed())
			}
		})

		By("the page and its assets, embedded")
		for _, path := range []string{"/", "/cluster"} {
			code, ct, body := getBody(base + path)
			Expect(code).To(Equal(http.StatusOK), path)
			Expect(ct).To(HavePrefix("text/html"), path)
			Expect(body).To(ContainSubstring(`<script src="/console/app.js"`))
			Expect(body).NotTo(MatchRegexp(`(src|href)="(https?:)?//`), "nothing is loaded from elsewhere")
		}
		code, ct, body := getBody(base + "/console/app.js")
		Expect(code).To(Equal(http.StatusOK))
		Expect(ct).To(HavePrefix("text/javascript"))
		Expect(body).To(ContainSubstring("new EventSource('/api/v1/leader?watch=true')"))
		Expect(body).NotTo(MatchRegexp(`(https?:)?//[a-z0-9]`), "the script reaches nothing but its own replica")
		code, _, _ = getBody(base + "/nope")
		Expect(code).To(Equal(http.StatusNotFound), "/ matches the root only")
		resp, err := http.Post(base+"/", "text/plain", nil)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusMethodNotAllowed))

		By("the term log")
		var (
			self  app.LeaderInfo
			terms app.TermsInfo
		)
		Eventually(func(g Gomega) { // a loaded machine may end a term early: the newest one is the lease's
			self, terms = app.LeaderInfo{}, app.TermsInfo{}
			g.Expect(getJSON(base+"/api/v1/leader", &self)).To(Equal(http.StatusOK))
			g.Expect(getJSON(base+"/api/v1/terms", &terms)).To(Equal(http.StatusOK))
			g.Expect(terms.Election).To(Equal("dubbo-admin"))
			g.Expect(terms.Terms).NotTo(BeEmpty())
			g.Expect(self.Held).To(BeTrue())
			g.Expect(terms.Terms[0].Holder).To(Equal(self.Self.Identity))
			g.Expect(terms.Terms[0].Term).To(Equal(self.Term))
			g.Expect(terms.Terms[0].EndedAt.IsZero()).To(BeTrue(), "the term is open")
		}).Should(Succeed())
		for _, bad := range []string{"0", "-1", "x", "1001"} {
			Expect(getJSON(base+"/api/v1/terms?limit="+bad, nil)).To(Equal(http.StatusBadRequest), bad)
		}

		By("the resource counts, equal to the lists")
		Eventually(func(g Gomega) {
			var counts app.CountsInfo
			g.Expect(getJSON(base+"/api/v1/counts", &counts)).To(Equal(http.StatusOK))
			g.Expect(counts.Kinds).NotTo(BeEmpty())
			var total int64
			for _, k := range counts.Kinds {
				var list app.ResourceList
				g.Expect(getJSON(base+"/api/v1/resources/"+k.Kind+"?limit=1000", &list)).To(Equal(http.StatusOK))
				g.Expect(list.Items).To(HaveLen(int(k.Count)), k.Kind)
				total += k.Count
			}
			g.Expect(counts.Total).To(Equal(total))
		}).Should(Succeed())

		By("the cluster: this replica's own status, without a membership table")
		var cl app.ClusterInfo
		Expect(getJSON(base+"/api/v1/cluster", &cl)).To(Equal(http.StatusOK))
		Expect(cl.Replicas).To(HaveLen(1))
		Expect(cl.Replicas[0].Self).To(BeTrue())
		Expect(cl.Replicas[0].Identity).To(Equal(self.Self.Identity))
		Expect(string(cl.Replicas[0].Status)).To(MatchRegexp(`"role":\s*"Leading"`))

		By("a graceful stop ends the term as released; the next replica mints the next term")
		Expect(rep.Stop(ctx)).To(Succeed())
		stopped = true
		next, nextBase := startLeading(ctx, db.Config.DSN)
		DeferCleanup(func(ctx SpecContext) { Expect(next.Stop(ctx)).To(Succeed()) })
		var nextInfo app.LeaderInfo
		Expect(getJSON(nextBase+"/api/v1/leader", &nextInfo)).To(Equal(http.StatusOK))
		terms = app.TermsInfo{}
		Expect(getJSON(nextBase+"/api/v1/terms", &terms)).To(Equal(http.StatusOK))
		// A loaded machine may end the new term early and start another.
		var stopped1, next1 leader.TermRecord // the stopped replica's last term, the next one after it
		for i, t := range terms.Terms {
			if t.Term == self.Term {
				stopped1 = t
				Expect(i).To(BeNumerically(">", 0))
				next1 = terms.Terms[i-1]
			}
		}
		Expect(stopped1.Holder).To(Equal(self.Self.Identity))
		Expect(stopped1.How).To(Equal(leader.EndReleased))
		Expect(stopped1.EndedAt).To(BeTemporally(">=", stopped1.StartedAt))
		Expect(next1.Holder).To(Equal(nextInfo.Self.Identity))
		Expect(getJSON(nextBase+"/api/v1/terms?limit=1", &terms)).To(Equal(http.StatusOK))
		Expect(terms.Terms).To(HaveLen(1))
	}, NodeTimeout(3*time.Minute))

	It("reads every peer's status from the peer itself, and says which could not be read", func(ctx SpecContext) {
		leaks := goleak.IgnoreCurrent()
		// Registered first, so it runs last: after the servers stopped.
		DeferCleanup(func() { Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed()) })
		db := dbtest.Ginkgo("app", database.SQLite)
		rep, peerBase := startLeading(ctx, db.Config.DSN)
		DeferCleanup(func(ctx SpecContext) { Expect(rep.Stop(ctx)).To(Succeed()) })
		var peer app.LeaderInfo
		Expect(getJSON(peerBase+"/api/v1/leader", &peer)).To(Equal(http.StatusOK))

		hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		fake := &fakeReplica{status: runtime.Status{Role: runtime.RoleCandidate}, started: true}
		transport := &http.Transport{}
		api := &app.API{
			Status: fake.Status, Started: fake.Started, LastRenewal: fake.LastRenewal, Lease: fake,
			Store: store.NewMemory(), Registry: app.NewMetrics().Registry, Replica: -1, Log: GinkgoLogr,
			Console: &app.Console{Election: "dubbo-admin", Client: &http.Client{Transport: transport}, PeerTimeout: 300 * time.Millisecond,
				Peers: func(context.Context) ([]app.Peer, error) {
					return []app.Peer{
						{Identity: "zz-hung", Address: hung.URL},
						{Identity: peer.Self.Identity, Address: peerBase},
						{Identity: fake.Identity(), Address: "http://127.0.0.1:1"}, // itself: read in-process
						{Identity: "aa-gone", Address: "http://127.0.0.1:1"},
					}, nil
				}},
		}
		srv := httptest.NewServer(api.Handler())
		DeferCleanup(func() {
			srv.Close()
			hung.Close()
			transport.CloseIdleConnections()
		})

		start := time.Now()
		var cl app.ClusterInfo
		Expect(getJSON(srv.URL+"/api/v1/cluster", &cl)).To(Equal(http.StatusOK))
		Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second), "the peers are read in parallel, each within its timeout")
		ids := []string{}
		for _, r := range cl.Replicas {
			ids = append(ids, r.Identity)
		}
		Expect(ids).To(Equal([]string{fake.Identity(), "aa-gone", peer.Self.Identity, "zz-hung"}))
		Expect(cl.Replicas[0].Self).To(BeTrue())
		Expect(string(cl.Replicas[0].Status)).To(MatchRegexp(`"role":\s*"Candidate"`))
		Expect(cl.Replicas[1].Status).To(BeEmpty())
		Expect(cl.Replicas[1].Error).To(ContainSubstring("connection refused"))
		Expect(string(cl.Replicas[2].Status)).To(MatchRegexp(`"role":\s*"Leading"`))
		Expect(cl.Replicas[2].Address).To(Equal(peerBase))
		Expect(cl.Replicas[3].Error).To(ContainSubstring("deadline exceeded"))
	}, NodeTimeout(3*time.Minute))
})

var _ = Describe("The console's peers on sqlite", Label("sqlite"), func() {
	It("are the membership table's replicas: the live ones' status read from them, the gone ones marked", func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		rep, base := startLeading(ctx, db.Config.DSN)
		DeferCleanup(func(ctx SpecContext) { Expect(rep.Stop(ctx)).To(Succeed()) })

		var cl app.ClusterInfo
		Expect(getJSON(base+"/api/v1/cluster", &cl)).To(Equal(http.StatusOK))
		Expect(cl.Replicas).To(HaveLen(1), "an empty (or absent) table lists this replica only")
		Expect(cl.Error).To(BeEmpty())

		gdb, err := database.Open(ctx, db.Config)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(database.Close(gdb)).To(Succeed()) })
		table, err := membership.NewTable(gdb)
		Expect(err).NotTo(HaveOccurred())
		Expect(table.Migrate(ctx)).To(Succeed())
		// Another replica, served by the same process under another name.
		Expect(table.Upsert(ctx, "dubbo-admin", membership.Member{Identity: "other", Address: rep.HTTPAddress(), Role: "Candidate"})).To(Succeed())

		Expect(getJSON(base+"/api/v1/cluster", &cl)).To(Equal(http.StatusOK))
		Expect(cl.Replicas).To(HaveLen(2))
		Expect(cl.Replicas[1].Identity).To(Equal("other"))
		Expect(cl.Replicas[1].Address).To(Equal(base))
		Expect(string(cl.Replicas[1].Status)).To(MatchRegexp(`"components":`))
		Expect(cl.Replicas[1].Gone).To(BeFalse())

		By("not seen for longer than the lease (2 s): gone, and not read")
		Eventually(func(g Gomega) {
			cl = app.ClusterInfo{} // decoding into a used value keeps what the body leaves out
			g.Expect(getJSON(base+"/api/v1/cluster", &cl)).To(Equal(http.StatusOK))
			g.Expect(cl.Replicas).To(HaveLen(2))
			g.Expect(cl.Replicas[1].Gone).To(BeTrue())
		}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		Expect(cl.Replicas[1].Status).To(BeEmpty())
		Expect(cl.Replicas[1].Error).To(ContainSubstring("gone"))
	}, NodeTimeout(2*time.Minute))
})
