package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// sse is one server-sent event, or a comment (Event empty, Comment set).
type sse struct {
	Event, Data, Comment string
}

// openStream GETs /api/v1/leader?watch=true and parses the events into
// the returned channel, which closes when the stream ends.
func openStream(client *http.Client, base string) (*http.Response, <-chan sse) {
	GinkgoHelper()
	resp, err := client.Get(base + "/api/v1/leader?watch=true")
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	Expect(resp.Header.Get("Content-Type")).To(Equal("text/event-stream"))
	events := make(chan sse, 64)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sse{}) {
					events <- ev
				}
				ev = sse{}
			case strings.HasPrefix(line, ":"):
				ev.Comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[len("data: "):]
			}
		}
	}()
	return resp, events
}

// leaderEvent decodes a leader event.
func leaderEvent(ev sse) app.LeaderInfo {
	GinkgoHelper()
	Expect(ev.Event).To(Equal(app.LeaderEvent), "%+v", ev)
	var info app.LeaderInfo
	Expect(json.Unmarshal([]byte(ev.Data), &info)).To(Succeed())
	return info
}

// nextLeader skips keepalives to the next leader event.
func nextLeader(events <-chan sse) app.LeaderInfo {
	GinkgoHelper()
	var ev sse
	Eventually(func() string {
		select {
		case ev = <-events:
			return ev.Event
		default:
			return ""
		}
	}).WithTimeout(5 * time.Second).WithPolling(time.Millisecond).Should(Equal(app.LeaderEvent))
	return leaderEvent(ev)
}

var _ = Describe("The leader stream", Label("quick"), func() {
	It("sends the lease at once, then every change this replica sees, keepalives between, and ends at shutdown", func(ctx SpecContext) {
		leaks := goleak.IgnoreCurrent()
		DeferCleanup(func() { Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed()) })
		dbNow := time.UnixMilli(1_800_000_000_000).UTC()
		rec := leader.Record{Election: "dubbo-admin", Holder: "host-2-bb", Term: 3, AcquiredAt: dbNow.Add(-time.Minute),
			ExpiresAt: dbNow.Add(10 * time.Second), Now: dbNow}
		fake := &fakeReplica{status: runtime.Status{Role: runtime.RoleCandidate}, started: true, record: rec, observed: rec}
		roles := make(chan runtime.RoleChange, 1)
		api := &app.API{
			Status: fake.Status, Started: fake.Started, LastRenewal: fake.LastRenewal, Lease: fake,
			Store: store.NewMemory(), Registry: app.NewMetrics().Registry, Replica: -1, Log: GinkgoLogr,
			Subscribe:     func(context.Context) <-chan runtime.RoleChange { return roles },
			WatchInterval: 20 * time.Millisecond, WatchKeepalive: 150 * time.Millisecond,
		}
		srv := httptest.NewUnstartedServer(api.Handler())
		srv.Config.RegisterOnShutdown(api.CloseStreams)
		srv.Start()
		DeferCleanup(srv.Close)
		transport := &http.Transport{}
		DeferCleanup(transport.CloseIdleConnections)
		client := &http.Client{Transport: transport}

		resp, events := openStream(client, srv.URL)
		defer resp.Body.Close()
		first := leaderEvent(<-events)
		Expect(first.Holder).To(Equal("host-2-bb"))
		Expect(first.Term).To(Equal(int64(3)))
		Expect(first.Self.Role).To(Equal(runtime.RoleCandidate))

		By("a keepalive comment while nothing changes, and no leader event")
		Eventually(events).Should(Receive(Equal(sse{Comment: "keepalive"})))
		Consistently(func() string {
			select {
			case ev := <-events:
				return ev.Event
			default:
				return ""
			}
		}).WithTimeout(100 * time.Millisecond).Should(BeEmpty())

		By("the observed lease changes hands: one event with the new holder")
		seen := time.Now()
		fake.set(func(f *fakeReplica) {
			f.observed = leader.Record{Election: "dubbo-admin", Holder: "host-3-cc", Term: 4, AcquiredAt: dbNow, ExpiresAt: dbNow.Add(10 * time.Second), Now: dbNow}
		})
		next := nextLeader(events)
		Expect(time.Since(seen)).To(BeNumerically("<", time.Second))
		Expect(next.Holder).To(Equal("host-3-cc"))
		Expect(next.Term).To(Equal(int64(4)))

		By("this replica's own role changes: an event at once")
		term := leader.Term{Election: "dubbo-admin", Holder: "host-1-aa", Number: 5, AcquiredAt: dbNow}
		fake.set(func(f *fakeReplica) {
			f.status = runtime.Status{Role: runtime.RoleLeading, Term: term}
			f.observed = leader.Record{Election: "dubbo-admin", Holder: "host-1-aa", Term: 5, AcquiredAt: dbNow, ExpiresAt: dbNow.Add(10 * time.Second), Now: dbNow}
		})
		roles <- runtime.RoleChange{Seq: 1, From: runtime.RoleCandidate, To: runtime.RoleLeading, Term: term}
		next = nextLeader(events)
		Expect(next.Self.Leading).To(BeTrue())
		Expect(next.Holder).To(Equal("host-1-aa"))

		By("the lease is free")
		fake.set(func(f *fakeReplica) { f.observed = leader.Record{Election: "dubbo-admin", Term: 5, Now: dbNow} })
		Expect(nextLeader(events).Held).To(BeFalse())

		By("shutdown ends the stream at once instead of waiting for it")
		start := time.Now()
		Expect(srv.Config.Shutdown(ctx)).To(Succeed())
		Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
		Eventually(events).Should(BeClosed())
	})

	It("refuses a watch that is not a boolean, and serves one lease for watch=false", func() {
		fake := &fakeReplica{status: runtime.Status{Role: runtime.RoleCandidate}, started: true}
		api := &app.API{Status: fake.Status, Started: fake.Started, LastRenewal: fake.LastRenewal, Lease: fake,
			Store: store.NewMemory(), Registry: app.NewMetrics().Registry, Replica: -1, Log: GinkgoLogr}
		srv := httptest.NewServer(api.Handler())
		DeferCleanup(srv.Close)
		var e app.ErrorBody
		Expect(getJSON(srv.URL+"/api/v1/leader?watch=yes-please", &e)).To(Equal(http.StatusBadRequest))
		Expect(e.Message).To(ContainSubstring("watch"))
		var info app.LeaderInfo
		Expect(getJSON(srv.URL+"/api/v1/leader?watch=false", &info)).To(Equal(http.StatusOK))
		Expect(info.Self.Identity).To(Equal("host-1-aa"))
	})
})

var _ = Describe("The leader stream of a replica on sqlite", Label("sqlite"), func() {
	It("streams the replica's own election, and a graceful stop ends it without waiting for the shutdown timeout", func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		cfg := fastConfig(db.Config.DSN)
		cfg.HTTP.ShutdownTimeout = app.Duration(20 * time.Second)
		rep, err := app.NewReplica(cfg, GinkgoLogr)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Start(ctx)).To(Succeed())
		base := "http://" + rep.HTTPAddress()
		transport := &http.Transport{}
		DeferCleanup(transport.CloseIdleConnections)
		resp, events := openStream(&http.Client{Transport: transport}, base)
		defer resp.Body.Close()

		var info app.LeaderInfo
		for i := 0; i < 10 && !info.Self.Leading; i++ {
			info = nextLeader(events) // Candidate, then Leading
		}
		Expect(info.Self.Leading).To(BeTrue())
		Expect(info.Holder).To(Equal(info.Self.Identity))
		Expect(info.Held).To(BeTrue())

		start := time.Now()
		Expect(rep.Stop(ctx)).To(Succeed())
		Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second), "the stream did not hold up the shutdown")
		Eventually(events).Should(BeClosed())
	}, NodeTimeout(2*time.Minute))
})
