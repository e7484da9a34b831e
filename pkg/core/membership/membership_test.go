package membership_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/membership"
)

const (
	period    = 100 * time.Millisecond
	goneAfter = 1500 * time.Millisecond
)

func config(election string) membership.Config {
	return membership.Config{Election: election, Period: period, GoneAfter: goneAfter, OpTimeout: time.Second}
}

// countStatements counts every statement db sends from now on.
func countStatements(db *gorm.DB) *atomic.Int64 {
	n := new(atomic.Int64)
	count := func(*gorm.DB) { n.Add(1) }
	Expect(db.Callback().Raw().After("gorm:raw").Register("test:count", count)).To(Succeed())
	Expect(db.Callback().Row().After("gorm:row").Register("test:count", count)).To(Succeed())
	Expect(db.Callback().Query().After("gorm:query").Register("test:count", count)).To(Succeed())
	return n
}

// replica is one recorder with a state the spec changes.
type replica struct {
	mu     sync.Mutex
	m      membership.Member
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func (r *replica) self() membership.Member { r.mu.Lock(); defer r.mu.Unlock(); return r.m }
func (r *replica) set(f func(*membership.Member)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.m)
}

// stop ends Run (a graceful stop) and returns its error.
func (r *replica) stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

var _ = Describe("Membership", func() {
	for _, dialect := range dbtest.Dialects {
		Describe("on "+dialect, Label(dialect), func() {
			var (
				tdb      *dbtest.DB
				reader   *membership.Table
				election string
				seq      int
			)

			open := func(ctx context.Context) *gorm.DB {
				GinkgoHelper()
				db, err := tdb.Open(ctx)
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(func() { _ = database.Close(db) })
				return db
			}

			start := func(ctx context.Context, db *gorm.DB, cfg membership.Config, m membership.Member) *replica {
				GinkgoHelper()
				table, err := membership.NewTable(db)
				Expect(err).NotTo(HaveOccurred())
				r := &replica{m: m, done: make(chan error, 1)}
				rec, err := membership.NewRecorder(table, cfg, r.self, GinkgoLogr)
				Expect(err).NotTo(HaveOccurred())
				runCtx, cancel := context.WithCancel(context.Background())
				r.cancel = cancel
				go func() { r.done <- rec.Run(runCtx) }()
				DeferCleanup(func() { _ = r.stop() })
				return r
			}

			member := func(role string) membership.Member {
				seq++
				return membership.Member{Identity: "host-" + string(rune('a'+seq%26)) + "-" + time.Now().Format("150405.000000"),
					Address: "127.0.0.1:8080", Version: "v1", Host: "host", PID: 1000 + seq, Role: role}
			}

			list := func(ctx context.Context) membership.View {
				GinkgoHelper()
				v, err := reader.List(ctx, election, goneAfter)
				Expect(err).NotTo(HaveOccurred())
				return v
			}

			byIdentity := func(v membership.View, id string) (membership.Replica, bool) {
				for _, r := range v.Replicas {
					if r.Identity == id {
						return r, true
					}
				}
				return membership.Replica{}, false
			}

			BeforeEach(func(ctx SpecContext) {
				tdb = dbtest.Ginkgo("membership", dialect)
				var err error
				reader, err = membership.NewTable(open(ctx))
				Expect(err).NotTo(HaveOccurred())
				Expect(reader.Migrate(ctx)).To(Succeed())
				Expect(reader.Migrate(ctx)).To(Succeed(), "idempotent")
				election = "membership-" + dialect
			})

			It("lists every replica with its state, by the database's clock", func(ctx SpecContext) {
				a := start(ctx, open(ctx), config(election), member("Leading"))
				a.set(func(m *membership.Member) { m.Term = 4 })
				b := start(ctx, open(ctx), config(election), member("Candidate"))
				b.set(func(m *membership.Member) { m.Error = "read lease: database is locked" })
				Eventually(func(g Gomega) {
					v := list(ctx)
					g.Expect(v.Replicas).To(HaveLen(2))
					g.Expect(v.Alive()).To(Equal(2))
					ra, _ := byIdentity(v, a.self().Identity)
					g.Expect(ra.Member).To(Equal(a.self()))
					rb, _ := byIdentity(v, b.self().Identity)
					g.Expect(rb.Error).To(Equal("read lease: database is locked"))
					g.Expect(rb.SeenAt).NotTo(BeTemporally(">", v.Now))
					g.Expect(rb.StartedAt).NotTo(BeTemporally(">", rb.SeenAt))
				}).Should(Succeed())

				first, _ := byIdentity(list(ctx), a.self().Identity)
				a.set(func(m *membership.Member) { m.Role, m.Term = "Candidate", 0 })
				Eventually(func(g Gomega) {
					r, _ := byIdentity(list(ctx), a.self().Identity)
					g.Expect(r.Role).To(Equal("Candidate"))
					g.Expect(r.Term).To(BeZero())
					g.Expect(r.StartedAt).To(Equal(first.StartedAt), "started_at is kept")
					g.Expect(r.SeenAt).To(BeTemporally(">", first.SeenAt))
				}).Should(Succeed())
			})

			It("sends at most one statement per period, also while its state changes at every period", func(ctx SpecContext) {
				db := open(ctx)
				n := countStatements(db)
				r := start(ctx, db, config(election), member("Candidate"))
				began := time.Now()
				flip := time.NewTicker(period / 2)
				defer flip.Stop()
				for time.Since(began) < 20*period {
					<-flip.C
					r.set(func(m *membership.Member) { m.Term++ })
				}
				Expect(r.stop()).To(Succeed())
				elapsed := time.Since(began)
				// One per period, the one at start, and the final delete.
				Expect(n.Load()).To(BeNumerically("<=", int64(elapsed/period)+2))
			})

			It("writes a replica whose state does not change only every keepalive", func(ctx SpecContext) {
				db := open(ctx)
				n := countStatements(db)
				cfg := config(election)
				cfg.Keepalive = 500 * time.Millisecond
				r := start(ctx, db, cfg, member("Candidate"))
				Consistently(func() int64 { return n.Load() }, 2*time.Second, 100*time.Millisecond).Should(BeNumerically("<=", 2+2*time.Second/cfg.Keepalive+1))
				Expect(r.stop()).To(Succeed())
			})

			It("removes a replica that stops gracefully", func(ctx SpecContext) {
				r := start(ctx, open(ctx), config(election), member("Candidate"))
				Eventually(func() []membership.Replica { return list(ctx).Replicas }).Should(HaveLen(1))
				Expect(r.stop()).To(Succeed())
				Expect(list(ctx).Replicas).To(BeEmpty())
			})

			It("lists a crashed replica as gone once it was not seen for goneAfter, and never as alive again; a restart has a new identity", func(ctx SpecContext) {
				db := open(ctx)
				crashed := start(ctx, db, config(election), member("Leading"))
				id := crashed.self().Identity
				Eventually(func() []membership.Replica { return list(ctx).Replicas }).Should(HaveLen(1))
				// A crash: the replica loses its database and never deletes its row.
				Expect(database.Close(db)).To(Succeed())
				Expect(crashed.stop()).To(HaveOccurred())

				restarted := start(ctx, open(ctx), config(election), member("Candidate"))
				Eventually(func(g Gomega) {
					v := list(ctx)
					old, ok := byIdentity(v, id)
					g.Expect(ok).To(BeTrue())
					g.Expect(old.Gone).To(BeTrue())
					g.Expect(old.SeenAgo()).To(BeNumerically(">", goneAfter))
					now, ok := byIdentity(v, restarted.self().Identity)
					g.Expect(ok).To(BeTrue())
					g.Expect(now.Gone).To(BeFalse())
					g.Expect(v.Alive()).To(Equal(1))
				}).Should(Succeed())
				Consistently(func() bool {
					old, _ := byIdentity(list(ctx), id)
					return old.Gone
				}, time.Second, 100*time.Millisecond).Should(BeTrue())
			})

			It("deletes replicas gone for longer than the retention when a replica starts", func(ctx SpecContext) {
				db := open(ctx)
				old := start(ctx, db, config(election), member("Candidate"))
				Eventually(func() []membership.Replica { return list(ctx).Replicas }).Should(HaveLen(1))
				Expect(database.Close(db)).To(Succeed())
				Expect(old.stop()).To(HaveOccurred())
				Eventually(func() bool { return list(ctx).Replicas[0].Gone }).Should(BeTrue())

				cfg := config(election)
				cfg.Retention = goneAfter
				fresh := start(ctx, open(ctx), cfg, member("Candidate"))
				Eventually(func(g Gomega) {
					v := list(ctx)
					g.Expect(v.Replicas).To(HaveLen(1))
					g.Expect(v.Replicas[0].Identity).To(Equal(fresh.self().Identity))
				}).WithTimeout(30 * time.Second).Should(Succeed())
			})
		})
	}
})

var _ = Describe("Membership config", Label("quick"), func() {
	DescribeTable("names the setting that cannot work",
		func(f func(*membership.Config), want string) {
			cfg := membership.Config{Election: "e", Period: time.Second, GoneAfter: 10 * time.Second, OpTimeout: time.Second}
			Expect(cfg.Validate()).To(Succeed())
			f(&cfg)
			Expect(cfg.Validate()).To(MatchError(ContainSubstring(want)))
		},
		Entry("no election", func(c *membership.Config) { c.Election = "" }, "election"),
		Entry("no period", func(c *membership.Config) { c.Period = 0 }, "period"),
		Entry("goneAfter not above period", func(c *membership.Config) { c.GoneAfter = c.Period }, "goneAfter"),
		Entry("keepalive past goneAfter", func(c *membership.Config) { c.Keepalive = c.GoneAfter }, "keepalive"),
	)
})
