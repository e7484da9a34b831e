package kubeapiserver

import (
	"context"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

// skipped is the name of the skipped "dialect" in the skip log.
const skipped = "kube-apiserver"

// Ginkgo starts a Server for the calling suite (call it from a BeforeSuite
// or a BeforeAll) and registers its Close and the removal of its files as
// cleanup. When etcd or the kube-apiserver binary is missing it records the
// reason and how to build it (see dbtest.ReportSkip) and skips, or fails
// under ADMIN_TEST_STRICT=1. suite names the suite in the skip line.
func Ginkgo(suite string) *Server {
	GinkgoHelper()
	if ok, why := Available(); !ok {
		if dbtest.Strict() {
			Fail(why)
		}
		dbtest.ReportSkip(suite, skipped, why)
		Skip(why)
	}
	dir, err := os.MkdirTemp("", "admin-kube-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx, dir)
	Expect(err).NotTo(HaveOccurred(), "start etcd and kube-apiserver")
	DeferCleanup(s.Close)
	return s
}

// Testing is Ginkgo for a plain test or benchmark.
func Testing(tb testing.TB, suite string) *Server {
	tb.Helper()
	if ok, why := Available(); !ok {
		if dbtest.Strict() {
			tb.Fatal(why)
		}
		dbtest.ReportSkip(suite, skipped, why)
		tb.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := Start(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// GinkgoClient is NewClient for a spec: its connections close at cleanup.
func GinkgoClient(rc *rest.Config) kubernetes.Interface {
	GinkgoHelper()
	c, closeIdle, err := NewClient(rc)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(closeIdle)
	return c
}
