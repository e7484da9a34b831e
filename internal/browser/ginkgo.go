package browser

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

// Ginkgo starts a browser for the current container (call it from a
// BeforeAll or an It), registers its Close as cleanup, and skips the specs
// with a reported reason when Chromium is not installed; under
// ADMIN_TEST_STRICT=1 that is a failure instead. suite names the suite in
// the skip line, e.g. "test/console".
func Ginkgo(suite string) *Browser {
	GinkgoHelper()
	SkipUnavailable(suite)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Start(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(b.Close)
	bin, _ := Binary()
	dbtest.ReportRan(suite, "chromium", bin)
	return b
}

// SkipUnavailable skips the current spec, with the reason recorded for
// `make test`'s summary, when Chromium is not installed; under
// ADMIN_TEST_STRICT=1 it fails instead.
func SkipUnavailable(suite string) {
	GinkgoHelper()
	if _, err := Binary(); err != nil {
		if dbtest.Strict() {
			Fail("ADMIN_TEST_STRICT=1 and " + err.Error())
		}
		dbtest.ReportSkip(suite, "chromium", err.Error())
		Skip("chromium: " + err.Error())
	}
}
