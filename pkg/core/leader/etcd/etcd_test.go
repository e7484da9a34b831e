package etcd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/electortest"
	"github.com/apache/dubbo-admin/pkg/core/leader/etcd"
)

var _ = Describe("etcd.Config", Label("quick"), func() {
	valid := func() etcd.Config { return etcd.Config{Endpoints: []string{"http://127.0.0.1:2379"}}.WithDefaults() }

	It("fills the defaults and accepts them", func() {
		c := valid()
		Expect(c.Prefix).To(Equal(etcd.DefaultPrefix))
		Expect(c.TTL).To(Equal(etcd.DefaultTTL))
		Expect(c.Validate()).To(Succeed())
	})

	DescribeTable("names the broken field",
		func(change func(*etcd.Config), field string) {
			c := valid()
			change(&c)
			err := c.Validate()
			Expect(err).To(MatchError(leader.ErrInvalidConfig))
			Expect(err.Error()).To(ContainSubstring(field))
		},
		Entry("no endpoint", func(c *etcd.Config) { c.Endpoints = nil }, "etcd.endpoints"),
		Entry("bad scheme", func(c *etcd.Config) { c.Endpoints = []string{"ftp://x:1"} }, "etcd.endpoints[0]"),
		Entry("no port", func(c *etcd.Config) { c.Endpoints = []string{"a:1", "host"} }, "etcd.endpoints[1]"),
		Entry("https without TLS", func(c *etcd.Config) { c.Endpoints = []string{"https://x:1"} }, "etcd.endpoints[0]"),
		Entry("relative prefix", func(c *etcd.Config) { c.Prefix = "admin" }, "etcd.prefix"),
		Entry("root prefix", func(c *etcd.Config) { c.Prefix = "/" }, "etcd.prefix"),
		Entry("trailing slash", func(c *etcd.Config) { c.Prefix = "/admin/" }, "etcd.prefix"),
		Entry("fractional TTL", func(c *etcd.Config) { c.TTL = 2500 * time.Millisecond }, "etcd.ttl"),
		Entry("short TTL", func(c *etcd.Config) { c.TTL = time.Second }, "etcd.ttl"),
		Entry("long op timeout", func(c *etcd.Config) { c.OpTimeout = 4 * time.Second }, "etcd.opTimeout"),
		Entry("cert without key", func(c *etcd.Config) { c.CertFile = "/etc/hostname" }, "etcd.certFile"),
		Entry("missing CA", func(c *etcd.Config) { c.CAFile = "/nonexistent/ca.pem" }, "etcd.caFile"),
		Entry("password without user", func(c *etcd.Config) { c.Password = "pw" }, "etcd.password"),
	)

	It("never prints the password", func() {
		c := valid()
		c.Username, c.Password = "admin", "s3cret-pw"
		c.Endpoints = []string{"http://u:s3cret-pw@127.0.0.1:2379"}
		for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(c.Validate())} {
			Expect(s).NotTo(ContainSubstring("s3cret"))
		}
		Expect(c.String()).To(ContainSubstring("xxxxx"))
		Expect(c.Validate()).To(MatchError(ContainSubstring("etcd.endpoints[0]")))
	})
})

var _ = Describe("Elector on etcd", Label("etcd"), Ordered, func() {
	var f *fixture
	BeforeAll(func() { f = newFixture() })
	BeforeEach(func() {
		leaks := goleak.IgnoreCurrent()
		DeferCleanup(func() { Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed()) })
	})

	newElector := func(endpoint, election string) *etcd.Elector {
		GinkgoHelper()
		e, err := f.elector(endpoint, election, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(e.Prepare(context.Background())).To(Succeed())
		return e
	}
	win := func(ch <-chan electortest.Won) electortest.Won {
		GinkgoHelper()
		var w electortest.Won
		Eventually(ch).Should(Receive(&w))
		return w
	}

	It("records the leader key's revision as the token and lists the queue", func(ctx SpecContext) {
		name := electortest.Election("token")
		a, b, c := newElector(f.server.Endpoint(), name), newElector(f.server.Endpoint(), name), newElector(f.server.Endpoint(), name)
		wa := win(electortest.Campaign(ctx, a))
		electortest.Campaign(ctx, b)
		Eventually(func() ([]string, error) { r, err := a.Leader(ctx); return r.Candidates, err }).Should(HaveLen(2))
		electortest.Campaign(ctx, c)
		var rec leader.Record
		Eventually(func() ([]string, error) {
			var err error
			rec, err = c.Leader(ctx)
			return rec.Candidates, err
		}).Should(Equal([]string{a.Identity(), b.Identity(), c.Identity()}))
		Expect(rec.Backend).To(Equal(etcd.Backend))
		Expect(rec.Token).To(MatchRegexp(`^etcd revision [1-9][0-9]*$`))
		Expect(rec.Remaining()).To(BeNumerically("~", 2*time.Second, time.Second))
		Expect(wa.L.Resign(ctx)).To(Succeed())
		Eventually(func() (string, error) { r, err := c.Leader(ctx); return r.Holder, err }).Should(Equal(b.Identity()), "the next in the queue leads")
	})

	It("replaces a crashed leader about one TTL after its last keep-alive", func(ctx SpecContext) {
		name := electortest.Election("crash")
		a, b := newElector(f.server.Endpoint(), name), newElector(f.server.Endpoint(), name)
		actx, crash := context.WithCancel(ctx)
		wa := win(electortest.Campaign(actx, a))
		bwins := electortest.Campaign(ctx, b)
		Consistently(bwins, "1s").ShouldNot(Receive())
		crash() // no revoke: the lease must expire by itself
		at := time.Now()
		Eventually(wa.L.Done()).Should(BeClosed())
		wb := win(bwins)
		took := wb.At.Sub(at)
		GinkgoWriter.Printf("crash takeover after %v\n", took)
		// The lease expires at most one TTL after the crash (the last
		// keep-alive went out before it), plus etcd's expiry sweep (every
		// 500 ms) and the watch; twice the TTL leaves room for a loaded
		// machine (measured here: 2.1-2.5 s).
		Expect(took).To(BeNumerically("<", 2*2*time.Second), "about one TTL")
		Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(wb.L.Resign(ctx)).To(Succeed())
		Expect(wa.L.Resign(ctx)).To(Succeed(), "resigning after a crash of the campaign revokes what is left")
	})

	It("resigns within the caller's deadline while etcd is unreachable", func(ctx SpecContext) {
		proxy, err := faultproxy.Start(f.server.Addr())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(proxy.Close)
		a := newElector(proxy.Addr(), electortest.Election("resign-cut"))
		wa := win(electortest.Campaign(ctx, a))
		proxy.Pause()
		DeferCleanup(proxy.Resume)
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		Expect(wa.L.Resign(rctx)).To(MatchError(context.DeadlineExceeded))
		Expect(time.Since(start)).To(BeNumerically("<", time.Second))
		Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrResigned))
		Eventually(wa.L.Done()).Should(BeClosed())
	})

	It("fails Prepare on unreadable TLS files, naming them", func(ctx SpecContext) {
		ca := filepath.Join(GinkgoT().TempDir(), "ca.pem")
		Expect(os.WriteFile(ca, []byte("not a certificate"), 0o600)).To(Succeed())
		cfg := testConfig("https://" + f.server.Addr())
		cfg.CAFile = ca
		e, err := etcd.New(electortest.Election("tls"), cfg, f.epochs())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(e.Close)
		err = e.Prepare(ctx)
		Expect(err).To(MatchError(leader.ErrInvalidConfig))
		Expect(err.Error()).To(ContainSubstring("etcd.caFile"))
	})

	It("reports every keep-alive of a leader to its Observer", func(ctx SpecContext) {
		var obs renewCounter
		e, err := etcd.New(electortest.Election("observer"), testConfig(f.server.Endpoint()), f.epochs(), etcd.WithObserver(&obs))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(e.Close)
		Expect(e.Prepare(ctx)).To(Succeed())
		w := win(electortest.Campaign(ctx, e))
		Eventually(obs.ok.Load).Should(BeNumerically(">=", 3), "a keep-alive every TTL/6")
		Expect(obs.failed.Load()).To(BeZero())
		Expect(w.L.LastRenewal()).To(BeTemporally("~", time.Now(), time.Second))
		Expect(w.L.Resign(ctx)).To(Succeed())
	})

	It("ends a campaign before Prepare with ErrNotPrepared", func(ctx SpecContext) {
		e, err := f.elector(f.server.Endpoint(), electortest.Election("unprepared"), "")
		Expect(err).NotTo(HaveOccurred())
		_, err = e.Campaign(ctx)
		Expect(err).To(MatchError(etcd.ErrNotPrepared))
	})
})

var _ = Describe("Elector on an etcd that restarts", Label("etcd"), Ordered, func() {
	var f *fixture
	BeforeAll(func() { f = newFixture() })

	It("ends the term while etcd is down, and elects a leader with a higher term once it is back", func(ctx SpecContext) {
		name := electortest.Election("restart")
		var es []*etcd.Elector
		for range 2 {
			e, err := f.elector(f.server.Endpoint(), name, "")
			Expect(err).NotTo(HaveOccurred())
			Expect(e.Prepare(ctx)).To(Succeed())
			es = append(es, e)
		}
		var wa electortest.Won
		Eventually(electortest.Campaign(ctx, es[0])).Should(Receive(&wa))
		bwins := electortest.Campaign(ctx, es[1])
		f.server.Kill()
		Eventually(wa.L.Context().Done(), "5s").Should(BeClosed())
		Expect(context.Cause(wa.L.Context())).To(MatchError(leader.ErrDeadlinePassed))
		Expect(f.server.Restart(ctx)).To(Succeed())
		var wb electortest.Won
		Eventually(bwins).Should(Receive(&wb))
		Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(wb.L.Resign(ctx)).To(Succeed())
		Expect(wa.L.Resign(ctx)).To(Succeed())
	})
})

var _ = Describe("Elector on etcd with authentication", Label("etcd"), Ordered, func() {
	const password = "s3cret-pw"
	var f *fixture
	BeforeAll(func(ctx SpecContext) {
		f = newFixture()
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{f.server.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		_, _ = c.RoleAdd(ctx, "root")
		_, err = c.UserAdd(ctx, "root", password)
		Expect(err).NotTo(HaveOccurred())
		_, err = c.UserGrantRole(ctx, "root", "root")
		Expect(err).NotTo(HaveOccurred())
		_, err = c.AuthEnable(ctx)
		Expect(err).NotTo(HaveOccurred())
	})

	elector := func(pw string) *etcd.Elector {
		GinkgoHelper()
		cfg := testConfig(f.server.Endpoint())
		cfg.Username, cfg.Password = "root", pw
		e, err := etcd.New(electortest.Election("auth"), cfg, f.epochs(), etcd.WithLogger(GinkgoLogr))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(e.Close)
		return e
	}

	It("fails Prepare on a wrong password without printing either password", func(ctx SpecContext) {
		err := elector("wrong-" + password).Prepare(ctx)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("authentication failed"))
		Expect(err.Error()).NotTo(ContainSubstring(password))
	})

	It("campaigns with the right credentials", func(ctx SpecContext) {
		e := elector(password)
		Expect(e.Prepare(ctx)).To(Succeed())
		var w electortest.Won
		Eventually(electortest.Campaign(ctx, e)).Should(Receive(&w))
		Expect(w.L.Resign(ctx)).To(Succeed())
	})
})

var _ = Describe("Elector on a 3-member etcd cluster", Label("etcd"), Ordered, func() {
	var (
		members []*etcdserver.Server
		f       *fixture
	)
	BeforeAll(func() {
		members = etcdserver.GinkgoCluster("pkg/core/leader/etcd", 3)
		f = &fixture{server: members[0], db: dbtest.Ginkgo("pkg/core/leader/etcd", database.SQLite)}
	})

	It("never has two leaders when etcd's own leader is killed, and has one once etcd elected another", func(ctx SpecContext) {
		var eps []string
		for _, m := range members {
			eps = append(eps, m.Endpoint())
		}
		name := electortest.Election("cluster")
		candidate := func() *etcd.Elector {
			cfg := testConfig(eps[0])
			cfg.Endpoints = eps
			e, err := etcd.New(name, cfg, f.epochs(), etcd.WithLogger(GinkgoLogr))
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(e.Close)
			Expect(e.Prepare(ctx)).To(Succeed())
			return e
		}
		a, b := candidate(), candidate()
		var wa electortest.Won
		Eventually(electortest.Campaign(ctx, a)).Should(Receive(&wa))
		var aEnded time.Time
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			<-wa.L.Context().Done()
			aEnded = time.Now()
		}()
		bwins := electortest.Campaign(ctx, b)

		// Kill the member that leads the etcd cluster.
		c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		var victim *etcdserver.Server
		for _, m := range members {
			st, err := c.Status(ctx, m.Endpoint())
			Expect(err).NotTo(HaveOccurred())
			if st.Header.MemberId == st.Leader {
				victim = m
			}
		}
		Expect(victim).NotTo(BeNil())
		killed := time.Now()
		victim.Kill()
		DeferCleanup(func(ctx SpecContext) { Expect(victim.Restart(ctx)).To(Succeed()) })

		// Either a keep-alive the leader sent after the kill is acknowledged
		// by the new etcd leader, and it goes on leading, or its term ends
		// and the follower wins; either way, never both at once.
		var wb electortest.Won
		bWon := false
		Eventually(func() bool {
			select {
			case wb = <-bwins:
				bWon = true
				return true
			default:
			}
			return wa.L.Context().Err() == nil && wa.L.LastRenewal().After(killed)
		}).Should(BeTrue(), "a leader once etcd elected another member")
		GinkgoWriter.Printf("etcd leader killed: the follower won: %t\n", bWon)
		if !bWon {
			Expect(wa.L.Resign(ctx)).To(Succeed())
			Eventually(bwins).Should(Receive(&wb))
		}
		Eventually(watched).Should(BeClosed())
		Expect(aEnded.Before(wb.At)).To(BeTrue(), "the old term ended at %v, the new one began at %v", aEnded, wb.At)
		Expect(wb.L.Term().Number).To(BeNumerically(">", wa.L.Term().Number))
		Expect(wb.L.Resign(ctx)).To(Succeed())
		Expect(wa.L.Resign(ctx)).To(Succeed())
	})
})

// renewCounter is a leader.Observer that counts keep-alives.
type renewCounter struct{ ok, failed atomic.Int64 }

func (r *renewCounter) ObserveRenew(_ time.Duration, err error) {
	if err != nil {
		r.failed.Add(1)
		return
	}
	r.ok.Add(1)
}
