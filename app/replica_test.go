package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	coreruntime "github.com/apache/dubbo-admin/pkg/core/runtime"
)

// examples is the repository's example data, from this package's directory.
func examples(dir string) string {
	_, file, _, _ := runtime.Caller(0)
	return "file://" + filepath.Join(filepath.Dir(file), "..", "examples", dir)
}

// fastConfig is a replica on db with quick election timings and a free port.
func fastConfig(dsn string) app.Config {
	cfg := app.Default()
	cfg.Database.DSN = dsn
	cfg.Registry.URL, cfg.Engine.URL = examples("registry"), examples("runtime")
	cfg.HTTP.Address = "127.0.0.1:0"
	cfg.HTTP.ShutdownTimeout = app.Duration(5 * time.Second)
	cfg.Election.LeaseDuration = app.Duration(2 * time.Second)
	cfg.Election.RenewDeadline = app.Duration(1500 * time.Millisecond)
	cfg.Election.RetryPeriod = app.Duration(200 * time.Millisecond)
	cfg.Election.OpTimeout = app.Duration(500 * time.Millisecond)
	return cfg
}

func getJSON(url string, into any) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if into != nil {
		return resp.StatusCode, json.Unmarshal(body, into)
	}
	return resp.StatusCode, nil
}

var _ = Describe("Replica on sqlite", Label("sqlite"), func() {
	It("leads, mirrors the example sources, serves them and stops in order", func(ctx SpecContext) {
		db := dbtest.Ginkgo("app", database.SQLite)
		rep, err := app.NewReplica(fastConfig(db.Config.DSN), GinkgoLogr)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Start(ctx)).To(Succeed())
		stopped := false
		DeferCleanup(func(ctx SpecContext) {
			if !stopped {
				Expect(rep.Stop(ctx)).To(Succeed())
			}
		})
		base := "http://" + rep.HTTPAddress()

		Eventually(func(g Gomega) {
			var info app.LeaderInfo
			code, err := getJSON(base+"/api/v1/leader", &info)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).To(Equal(http.StatusOK))
			g.Expect(info.Self.Leading).To(BeTrue())
			g.Expect(info.Holder).To(Equal(info.Self.Identity))
			g.Expect(info.Self.PID).To(Equal(os.Getpid()))
		}).WithTimeout(time.Minute).Should(Succeed())

		Eventually(func(g Gomega) {
			var list app.ResourceList
			code, err := getJSON(base+"/api/v1/resources/RuntimeInstance", &list)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).To(Equal(http.StatusOK))
			g.Expect(list.Items).NotTo(BeEmpty())
		}).WithTimeout(time.Minute).Should(Succeed())
		Expect(getJSON(base+"/readyz", nil)).To(Equal(http.StatusOK))
		Expect(getJSON(base+"/healthz", nil)).To(Equal(http.StatusOK))

		var info app.LeaderInfo
		Expect(getJSON(base+"/api/v1/leader", &info)).To(Equal(http.StatusOK))
		Expect(info.Path).To(Equal(leader.PathLockFenced))
		Expect(info.LockWindowMs).To(BeZero(), "SQLite's file lock needs no window")
		out, _, err := cli("leader", "status", "--db-dsn", db.Config.DSN)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`failover\s+lock-fenced: a crashed holder is replaced as soon as its process is gone`))

		resp, err := http.Get(base + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(string(body)).To(ContainSubstring("dubbo_admin_leader_is_leader 1"))
		Expect(string(body)).To(MatchRegexp(`dubbo_admin_store_fenced_writes_total\{op="replace",result="committed"\} [1-9]`))
		Expect(string(body)).To(ContainSubstring(`dubbo_admin_leader_transitions_total{to="Leading"} 1`))
		Expect(string(body)).To(ContainSubstring("dubbo_admin_leader_seconds_since_last_renew"))
		Expect(string(body)).To(ContainSubstring("dubbo_admin_leader_lock_fenced 1"), "fast failover is on by default: the term is lock-fenced")

		Expect(rep.Stop(ctx)).To(Succeed())
		stopped = true
		Expect(rep.Runtime().Status().Role).To(Equal(coreruntime.RoleStopped))
		_, err = http.Get(base + "/healthz")
		Expect(err).To(HaveOccurred(), "the HTTP server is shut down")

		out, _, err = cli("leader", "status", "--db-dsn", db.Config.DSN, "-o", "json")
		Expect(err).NotTo(HaveOccurred())
		var st app.LeaseStatus
		Expect(json.Unmarshal([]byte(out), &st)).To(Succeed())
		Expect(st.State).To(Equal("free"), "the lease is released on a graceful stop")
	}, NodeTimeout(3*time.Minute))

	It("refuses the memory store for a replica of several", func() {
		db := dbtest.Ginkgo("app", database.SQLite)
		cfg := fastConfig(db.Config.DSN)
		cfg.Store.Backend = app.StoreMemory
		cfg.ReplicaIndex = 1
		_, err := app.NewReplica(cfg, GinkgoLogr)
		Expect(err).To(MatchError(app.ErrStoreNotShared))
		Expect(err.Error()).To(ContainSubstring(`store.backend "memory"`))

		cfg.ReplicaIndex, cfg.Replicas = -1, 2
		_, err = app.NewReplica(cfg, GinkgoLogr)
		Expect(err).To(MatchError(app.ErrInvalidConfig))

		cfg.Replicas = 1
		rep, err := app.NewReplica(cfg, GinkgoLogr)
		Expect(err).NotTo(HaveOccurred(), "one replica may keep its resources in memory")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		Expect(rep.Start(ctx)).To(Succeed())
		Expect(rep.Stop(ctx)).To(Succeed())
	})
})
