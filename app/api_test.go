package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// fakeReplica is the API's view of a replica, set by each spec.
type fakeReplica struct {
	mu          sync.Mutex
	status      runtime.Status
	started     bool
	lastRenewal time.Time
	now         time.Time
	record      leader.Record
	observed    leader.Record
	leaseErr    error
}

func (f *fakeReplica) Status() runtime.Status { f.mu.Lock(); defer f.mu.Unlock(); return f.status }
func (f *fakeReplica) Started() bool          { f.mu.Lock(); defer f.mu.Unlock(); return f.started }
func (f *fakeReplica) Now() time.Time         { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeReplica) LastRenewal() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastRenewal, !f.lastRenewal.IsZero()
}
func (f *fakeReplica) Leader(context.Context) (leader.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.record, f.leaseErr
}
func (f *fakeReplica) Observed() leader.Record { f.mu.Lock(); defer f.mu.Unlock(); return f.observed }
func (f *fakeReplica) Identity() string        { return "host-1-aa" }
func (f *fakeReplica) set(fn func(*fakeReplica)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

var _ = Describe("HTTP API", Label("quick"), func() {
	var (
		fake *fakeReplica
		st   *store.Memory
		srv  *httptest.Server
		t0   time.Time
	)

	BeforeEach(func() {
		t0 = time.Now()
		dbNow := time.UnixMilli(1_800_000_000_000).UTC()
		term := leader.Term{Election: "dubbo-admin", Holder: "host-1-aa", Number: 7, AcquiredAt: dbNow.Add(-time.Minute)}
		fake = &fakeReplica{
			status: runtime.Status{Role: runtime.RoleLeading, Since: t0, Term: term, Leader: term.Holder, LeaderTerm: 7,
				Components: []runtime.ComponentStatus{
					{Name: "discovery", LeaderOnly: true, State: runtime.ComponentRunning},
				}},
			started: true, lastRenewal: t0, now: t0,
			record: leader.Record{Election: "dubbo-admin", Holder: "host-1-aa", Term: 7, AcquiredAt: term.AcquiredAt,
				ExpiresAt: dbNow.Add(10 * time.Second), Now: dbNow},
		}
		fake.observed = fake.record
		st = store.NewMemory()
		ctx := store.Unfenced(context.Background())
		for _, key := range []string{"shop-order/10.0.0.1:20880", "shop-order/10.0.0.2:20880", "shop-user/10.0.0.3:20880"} {
			_, err := st.Upsert(ctx, store.Resource{Kind: "Instance", Key: key,
				Labels: map[string]string{"application": key[:len(key)-len("/10.0.0.1:20880")]}, Spec: json.RawMessage(`{"ok":true}`)})
			Expect(err).NotTo(HaveOccurred())
		}
		api := &app.API{
			Status: fake.Status, Started: fake.Started, LastRenewal: fake.LastRenewal, Lease: fake,
			Store: st, Registry: app.NewMetrics().Registry, LeaseDuration: 10 * time.Second, Replica: 1, Now: fake.Now,
			Log: GinkgoLogr,
		}
		srv = httptest.NewServer(api.Handler())
		DeferCleanup(srv.Close)
	})

	call := func(method, path string, into any) int {
		GinkgoHelper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		Expect(err).NotTo(HaveOccurred())
		resp, err := srv.Client().Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Header.Get("Content-Type")).To(HavePrefix("application/json"), string(body))
		if into != nil {
			Expect(json.Unmarshal(body, into)).To(Succeed(), string(body))
		}
		return resp.StatusCode
	}

	Describe("/debug/pprof/", func() {
		It("is not served unless http.pprof is on, and then serves profiles but not the command line", func() {
			var e app.ErrorBody
			Expect(call("GET", "/debug/pprof/heap", &e)).To(Equal(http.StatusNotFound))

			api := &app.API{Status: fake.Status, Started: fake.Started, LastRenewal: fake.LastRenewal, Lease: fake,
				Store: st, Registry: app.NewMetrics().Registry, Now: fake.Now, Log: GinkgoLogr, Pprof: true}
			psrv := httptest.NewServer(api.Handler())
			DeferCleanup(psrv.Close)
			get := func(path string) (int, string) {
				resp, err := psrv.Client().Get(psrv.URL + path)
				Expect(err).NotTo(HaveOccurred())
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				Expect(err).NotTo(HaveOccurred())
				return resp.StatusCode, string(body)
			}
			code, body := get("/debug/pprof/")
			Expect(code).To(Equal(http.StatusOK))
			Expect(body).To(ContainSubstring("heap"))
			code, _ = get("/debug/pprof/heap?debug=1")
			Expect(code).To(Equal(http.StatusOK))
			code, _ = get("/debug/pprof/cmdline")
			Expect(code).To(Equal(http.StatusNotFound), "a DSN given as a flag must not show")
		})
	})

	Describe("/healthz", func() {
		It("turns unhealthy when a leader has not confirmed its lease within the lease duration", func() {
			var p app.Probe
			Expect(call("GET", "/healthz", &p)).To(Equal(http.StatusOK))
			Expect(p.Role).To(Equal(runtime.RoleLeading))

			fake.set(func(f *fakeReplica) { f.now = t0.Add(10 * time.Second) })
			Expect(call("GET", "/healthz", nil)).To(Equal(http.StatusOK), "exactly the lease duration is still fine")

			fake.set(func(f *fakeReplica) { f.now = t0.Add(10*time.Second + time.Millisecond) })
			var e app.ErrorBody
			Expect(call("GET", "/healthz", &e)).To(Equal(http.StatusServiceUnavailable))
			Expect(e.Code).To(Equal(http.StatusServiceUnavailable))
			Expect(e.Message).To(ContainSubstring("last confirmed 10.001s ago"))

			fake.set(func(f *fakeReplica) { f.lastRenewal = t0.Add(9 * time.Second) })
			Expect(call("GET", "/healthz", nil)).To(Equal(http.StatusOK), "a renewal makes it healthy again")
		})

		It("does not judge renewals on a follower", func() {
			fake.set(func(f *fakeReplica) {
				f.status.Role, f.status.Term = runtime.RoleCandidate, leader.Term{}
				f.now = t0.Add(time.Hour)
			})
			Expect(call("GET", "/healthz", nil)).To(Equal(http.StatusOK))
		})

		It("fails once the runtime stopped", func() {
			fake.set(func(f *fakeReplica) { f.status.Role = runtime.RoleStopped })
			Expect(call("GET", "/healthz", nil)).To(Equal(http.StatusServiceUnavailable))
		})
	})

	Describe("/readyz", func() {
		It("is ready when leading", func() {
			Expect(call("GET", "/readyz", nil)).To(Equal(http.StatusOK))
		})

		It("waits for the runtime to start", func() {
			fake.set(func(f *fakeReplica) { f.started = false })
			var e app.ErrorBody
			Expect(call("GET", "/readyz", &e)).To(Equal(http.StatusServiceUnavailable))
			Expect(e.Message).To(ContainSubstring("not started"))
		})

		It("is ready as a follower once it has read the lease", func() {
			fake.set(func(f *fakeReplica) { f.status.Role, f.observed = runtime.RoleCandidate, leader.Record{} })
			Expect(call("GET", "/readyz", nil)).To(Equal(http.StatusServiceUnavailable))
			fake.set(func(f *fakeReplica) { f.observed = f.record })
			Expect(call("GET", "/readyz", nil)).To(Equal(http.StatusOK))
		})

		It("waits for the non-leader components to run", func() {
			fake.set(func(f *fakeReplica) {
				f.status.Components = append(f.status.Components, runtime.ComponentStatus{Name: "api", State: runtime.ComponentBackingOff})
			})
			var e app.ErrorBody
			Expect(call("GET", "/readyz", &e)).To(Equal(http.StatusServiceUnavailable))
			Expect(e.Message).To(ContainSubstring("component api is BackingOff"))
		})
	})

	Describe("/api/v1/leader", func() {
		It("shows the holder, term, since, expiry and this replica's role", func() {
			var info app.LeaderInfo
			Expect(call("GET", "/api/v1/leader", &info)).To(Equal(http.StatusOK))
			Expect(info.Holder).To(Equal("host-1-aa"))
			Expect(info.Term).To(BeEquivalentTo(7))
			Expect(info.Held).To(BeTrue())
			Expect(info.Since).To(Equal(fake.record.AcquiredAt))
			Expect(info.Expires).To(Equal(fake.record.ExpiresAt))
			Expect(info.Self.Role).To(Equal(runtime.RoleLeading))
			Expect(info.Self.Leading).To(BeTrue())
			Expect(info.Self.Term).To(BeEquivalentTo(7))
			Expect(info.Self.Replica).To(HaveValue(Equal(1)))
			Expect(info.Stale).To(BeFalse())
		})

		It("falls back to the last observed lease when the database fails, and says so", func() {
			fake.set(func(f *fakeReplica) {
				f.leaseErr = errors.New("database is locked")
				f.status.Role = runtime.RoleCandidate
			})
			var info app.LeaderInfo
			Expect(call("GET", "/api/v1/leader", &info)).To(Equal(http.StatusOK))
			Expect(info.Stale).To(BeTrue())
			Expect(info.Error).To(ContainSubstring("database is locked"))
			Expect(info.Holder).To(Equal("host-1-aa"))
			Expect(info.Self.Leading).To(BeFalse())
		})

		It("reports no holder when the lease expired", func() {
			fake.set(func(f *fakeReplica) { f.record.Now = f.record.ExpiresAt.Add(time.Millisecond) })
			var info app.LeaderInfo
			Expect(call("GET", "/api/v1/leader", &info)).To(Equal(http.StatusOK))
			Expect(info.Held).To(BeFalse())
			Expect(info.Holder).To(BeEmpty())
		})
	})

	Describe("/api/v1/resources", func() {
		It("lists a kind, with pages and label filters", func() {
			var list app.ResourceList
			Expect(call("GET", "/api/v1/resources/Instance", &list)).To(Equal(http.StatusOK))
			Expect(list.Items).To(HaveLen(3))

			Expect(call("GET", "/api/v1/resources/Instance?limit=2", &list)).To(Equal(http.StatusOK))
			Expect(list.Items).To(HaveLen(2))
			Expect(list.Continue).NotTo(BeEmpty())
			var next app.ResourceList
			Expect(call("GET", "/api/v1/resources/Instance?limit=2&continue="+list.Continue, &next)).To(Equal(http.StatusOK))
			Expect(next.Items).To(HaveLen(1))
			Expect(next.Items[0].Key).To(Equal("shop-user/10.0.0.3:20880"))

			Expect(call("GET", "/api/v1/resources/Instance?label=application=shop-order", &list)).To(Equal(http.StatusOK))
			Expect(list.Items).To(HaveLen(2))
		})

		It("lists an empty kind as an empty array", func() {
			var raw map[string]any
			Expect(call("GET", "/api/v1/resources/Service", &raw)).To(Equal(http.StatusOK))
			Expect(raw["items"]).To(Equal([]any{}))
		})

		It("gets one resource by a key with slashes", func() {
			var r store.Resource
			Expect(call("GET", "/api/v1/resources/Instance/shop-order/10.0.0.2:20880", &r)).To(Equal(http.StatusOK))
			Expect(r.Key).To(Equal("shop-order/10.0.0.2:20880"))
			Expect(r.Spec).To(MatchJSON(`{"ok":true}`))
		})

		DescribeTable("answers errors as JSON with a message",
			func(method, path string, code int, want string) {
				var e app.ErrorBody
				Expect(call(method, path, &e)).To(Equal(code))
				Expect(e.Code).To(Equal(code))
				Expect(e.Message).To(ContainSubstring(want))
			},
			Entry("missing resource", "GET", "/api/v1/resources/Instance/nope", http.StatusNotFound, "not found"),
			Entry("bad limit", "GET", "/api/v1/resources/Instance?limit=-1", http.StatusBadRequest, "limit"),
			Entry("bad label", "GET", "/api/v1/resources/Instance?label=nokey", http.StatusBadRequest, "label"),
			Entry("bad continue token", "GET", "/api/v1/resources/Instance?continue=!!!", http.StatusBadRequest, "continue"),
			Entry("write method", "DELETE", "/api/v1/resources/Instance/shop-user/10.0.0.3:20880", http.StatusMethodNotAllowed, "use GET"),
			Entry("unknown path", "GET", "/api/v2/whatever", http.StatusNotFound, "no endpoint /api/v2/whatever"),
		)
	})

	It("serves the Prometheus metrics", func() {
		resp, err := srv.Client().Get(srv.URL + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(string(body)).To(ContainSubstring("dubbo_admin_leader_renew_failures_total 0"))
		Expect(string(body)).To(ContainSubstring("go_goroutines"))
	})
})
