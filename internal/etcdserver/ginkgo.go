package etcdserver

import (
	"context"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

// Ginkgo starts a member for the current container (call it from a
// BeforeAll), registers its Kill and the removal of its data as cleanup,
// and skips the specs with a reported reason when etcd is not installed;
// under ADMIN_TEST_STRICT=1 that is a failure instead. suite names the
// suite in the skip line, e.g. "pkg/core/leader/etcd".
func Ginkgo(suite string) *Server { GinkgoHelper(); return GinkgoCluster(suite, 1)[0] }

// GinkgoCluster is Ginkgo for an n-member cluster.
func GinkgoCluster(suite string, n int) []*Server {
	GinkgoHelper()
	if ok, why := Available(); !ok {
		if dbtest.Strict() {
			Fail("ADMIN_TEST_STRICT=1 and " + why)
		}
		dbtest.ReportSkip(suite, "etcd", why)
		Skip("etcd: " + why)
	}
	dir, err := os.MkdirTemp("", "admin-etcd-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ss, err := StartCluster(ctx, dir, n)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { closeAll(ss) })
	return ss
}
