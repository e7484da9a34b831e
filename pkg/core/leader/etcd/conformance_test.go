package etcd_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/electortest"
	"github.com/apache/dubbo-admin/pkg/core/leader/etcd"
)

// testConfig is the shortest session etcd grants: a lost leader's term ends
// 1.33 s after its last keep-alive, and a crashed one is replaced after 2 s.
func testConfig(endpoint string) etcd.Config {
	return etcd.Config{Endpoints: []string{endpoint}, Prefix: "/admin-test", TTL: 2 * time.Second, OpTimeout: 500 * time.Millisecond}
}

// fixture is one etcd member and one SQLite store database for the epochs.
type fixture struct {
	server *etcdserver.Server
	db     *dbtest.DB
}

func newFixture() *fixture {
	GinkgoHelper()
	return &fixture{server: etcdserver.Ginkgo("pkg/core/leader/etcd"), db: dbtest.Ginkgo("pkg/core/leader/etcd", database.SQLite)}
}

// epochs opens a pool of its own, as a separate replica would.
func (f *fixture) epochs() *leader.Epochs {
	GinkgoHelper()
	db, err := database.Open(context.Background(), f.db.Config)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
	return newEpochs(db)
}

func newEpochs(db *gorm.DB) *leader.Epochs {
	GinkgoHelper()
	e, err := leader.NewEpochs(db)
	Expect(err).NotTo(HaveOccurred())
	return e
}

// elector returns a candidate on endpoint, closed at cleanup.
func (f *fixture) elector(endpoint, election, identity string) (*etcd.Elector, error) {
	opts := []etcd.Option{etcd.WithLogger(GinkgoLogr)}
	if identity != "" {
		opts = append(opts, etcd.WithIdentity(identity))
	}
	e, err := etcd.New(election, testConfig(endpoint), f.epochs(), opts...)
	if err != nil {
		return nil, err
	}
	DeferCleanup(e.Close)
	return e, nil
}

var _ = Describe("Elector conformance on etcd", Label("etcd"), Ordered, func() {
	var f *fixture
	BeforeAll(func() { f = newFixture() })

	electortest.Specs(func() electortest.Backend {
		return electortest.Backend{
			New: func(_ context.Context, election, identity string) (leader.Elector, error) {
				return f.elector(f.server.Endpoint(), election, identity)
			},
			NewCuttable: func(_ context.Context, election string) (leader.Elector, func(), func()) {
				GinkgoHelper()
				proxy, err := faultproxy.Start(f.server.Addr())
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(proxy.Close)
				e, err := f.elector(proxy.Addr(), election, "")
				Expect(err).NotTo(HaveOccurred())
				return e, proxy.Pause, proxy.Resume
			},
		}
	})
})
