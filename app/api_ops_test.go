package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// The API's JSON as a browser or script reads it: raw maps, so that a Go
// field name or a zero value that should be omitted shows up.
var _ = Describe("HTTP API JSON", Label("quick"), func() {
	var (
		fake *fakeReplica
		api  *app.API
		srv  *httptest.Server
	)

	BeforeEach(func() {
		t0 := time.Now()
		dbNow := time.UnixMilli(1_800_000_000_000).UTC()
		term := leader.Term{Election: "dubbo-admin", Holder: "host-1-aa", Number: 7, AcquiredAt: dbNow.Add(-time.Minute)}
		fake = &fakeReplica{
			status:  runtime.Status{Role: runtime.RoleLeading, Since: t0, Term: term, Leader: term.Holder, LeaderTerm: 7},
			started: true, lastRenewal: t0, now: t0,
			record: leader.Record{Election: "dubbo-admin", Holder: "host-1-aa", Term: 7, AcquiredAt: term.AcquiredAt,
				ExpiresAt: dbNow.Add(10 * time.Second), Now: dbNow},
		}
		fake.observed = fake.record
		st := store.NewMemory()
		for _, key := range []string{"a/1", "a/2", "b/3"} {
			_, err := st.Upsert(store.Unfenced(context.Background()), store.Resource{Kind: "Instance", Key: key, Spec: json.RawMessage(`{}`)})
			Expect(err).NotTo(HaveOccurred())
		}
		api = &app.API{
			Status: fake.Status, Started: fake.Started, LastRenewal: fake.LastRenewal, Lease: fake,
			Store: st, Registry: app.NewMetrics().Registry, LeaseDuration: 10 * time.Second, Replica: -1, Now: fake.Now,
			Kinds: []string{"Application", "Instance", "Service", "RuntimeInstance"},
			Log:   GinkgoLogr,
		}
	})

	JustBeforeEach(func() {
		srv = httptest.NewServer(api.Handler())
		DeferCleanup(srv.Close)
	})

	get := func(path string) (int, map[string]any) {
		GinkgoHelper()
		resp, err := srv.Client().Get(srv.URL + path)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		var m map[string]any
		Expect(json.Unmarshal(body, &m)).To(Succeed(), string(body))
		return resp.StatusCode, m
	}

	It("writes /api/v1/status's term in camelCase", func() {
		code, m := get("/api/v1/status")
		Expect(code).To(Equal(http.StatusOK))
		Expect(m["term"]).To(HaveKeyWithValue("number", BeEquivalentTo(7)))
		Expect(m["term"]).To(HaveKeyWithValue("holder", "host-1-aa"))
		Expect(m["term"]).To(HaveKey("acquiredAt"))
		Expect(m["term"]).NotTo(HaveKey("Number"))
	})

	It("omits the term on a follower instead of a zero one", func() {
		fake.set(func(f *fakeReplica) { f.status.Role, f.status.Term = runtime.RoleCandidate, leader.Term{} })
		_, m := get("/api/v1/status")
		Expect(m).NotTo(HaveKey("term"))
		Expect(m).To(HaveKeyWithValue("leader", "host-1-aa"))
	})

	It("omits self.replica on a replica no supervisor started", func() {
		_, m := get("/api/v1/leader")
		Expect(m["self"]).NotTo(HaveKey("replica"))
		api.Replica = 2
		srv.Close()
		srv = httptest.NewServer(api.Handler())
		_, m = get("/api/v1/leader")
		Expect(m["self"]).To(HaveKeyWithValue("replica", BeEquivalentTo(2)))
	})

	DescribeTable("refuses what it cannot serve",
		func(path string, code int, want string) {
			got, m := get(path)
			Expect(got).To(Equal(code))
			Expect(m["message"]).To(ContainSubstring(want))
		},
		Entry("an unknown kind", "/api/v1/resources/Bogus", http.StatusNotFound, `unknown kind "Bogus"`),
		Entry("a kind in the wrong case", "/api/v1/resources/instance", http.StatusNotFound, `did you mean "Instance"`),
		Entry("one resource of an unknown kind", "/api/v1/resources/Bogus/x", http.StatusNotFound, `unknown kind "Bogus"`),
		Entry("a garbage continue token", "/api/v1/resources/Instance?continue=garbage", http.StatusBadRequest, "continue"),
		Entry("a token of another kind", "/api/v1/resources/Service?continue=YQ", http.StatusBadRequest, "continue"),
	)

	It("still pages with the tokens it hands out", func() {
		_, m := get("/api/v1/resources/Instance?limit=2")
		Expect(m["items"]).To(HaveLen(2))
		token, _ := m["continue"].(string)
		Expect(token).NotTo(BeEmpty())
		code, m := get("/api/v1/resources/Instance?limit=2&continue=" + token)
		Expect(code).To(Equal(http.StatusOK))
		Expect(m["items"]).To(HaveLen(1))
	})
})
