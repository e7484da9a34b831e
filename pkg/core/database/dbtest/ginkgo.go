package dbtest

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive
)

// Ginkgo provisions a database for the current container (call it from a
// BeforeAll or BeforeEach), registers its Drop as cleanup, and skips the
// specs with a reported reason when the dialect's server is absent.
// suite names the suite in the skip line, e.g. "pkg/core/leader".
func Ginkgo(suite, dialect string) *DB {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, reason, err := Provision(ctx, dialect)
	Expect(err).NotTo(HaveOccurred(), "provision a %s test database", dialect)
	if reason != "" {
		ReportSkip(suite, dialect, reason)
		Skip(dialect + ": " + reason)
	}
	ReportRan(suite, dialect, db.Addr)
	DeferCleanup(func(ctx SpecContext) {
		Expect(db.Drop(ctx)).To(Succeed())
	}, NodeTimeout(time.Minute))
	return db
}
