package replicas_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/test/harness"
)

// Generous bounds: the benchmarks measure speed; these only catch a
// failover that never happens.
const (
	leaderBound   = 30 * time.Second
	convergeBound = 30 * time.Second
	poll          = 20 * time.Millisecond
)

const suiteName = "test/replicas"

// provision returns a throwaway database of dialect, or skips.
func provision(dialect string) harness.Database {
	GinkgoHelper()
	return harness.FromDBTest(dbtest.Ginkgo(suiteName, dialect))
}

// newSource returns a source directory seeded with two files.
func newSource() *harness.Source {
	GinkgoHelper()
	src, err := harness.NewSource(GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	Expect(src.Put("base.yaml", harness.Instances("base", "app", 5)...)).To(Succeed())
	Expect(src.Put("doomed.yaml", harness.Instances("doomed", "old", 2)...)).To(Succeed())
	return src
}

// mutate changes the source while a failover is under way: a new file, an
// edited one, a deleted one, so that a new leader that kept the old state
// (lost) or brought back a deleted key (resurrected) shows in the diff.
func mutate(src *harness.Source, round int) {
	GinkgoHelper()
	Expect(src.Put(fmt.Sprintf("round-%d.yaml", round), harness.Instances(fmt.Sprintf("round-%d", round), "new", 3)...)).To(Succeed())
	in := harness.Instances("base", "app", 5)
	in[round%5].Phase = fmt.Sprintf("Round%d", round)
	Expect(src.Put("base.yaml", in...)).To(Succeed())
	Expect(src.Remove("doomed.yaml")).To(Succeed())
	Expect(src.Remove(fmt.Sprintf("round-%d.yaml", round-1))).To(Succeed())
}

// expectStoreEqualsSource waits until the store mirrors the source.
func expectStoreEqualsSource(ctx context.Context, diff func(context.Context) (string, error)) {
	GinkgoHelper()
	Eventually(ctx, diff).WithTimeout(convergeBound).WithPolling(50 * time.Millisecond).Should(BeEmpty())
}

// expectWriteLogOrdered checks the database-ordered write log.
func expectWriteLogOrdered(ctx context.Context, wl *harness.WriteLog) harness.WriteLogStats {
	GinkgoHelper()
	stats, err := wl.Check(ctx)
	Expect(err).NotTo(HaveOccurred())
	return stats
}

// report prints one round's measurement and attaches it to the report.
func report(fault string, round int, measured map[string]time.Duration) {
	line := fmt.Sprintf("%s round %d:", fault, round)
	for _, k := range []string{"leader back", "store converged"} {
		if d, ok := measured[k]; ok {
			line += fmt.Sprintf(" %s after %v;", k, d.Round(time.Millisecond))
		}
	}
	fmt.Fprintln(GinkgoWriter, line)
	AddReportEntry(fmt.Sprintf("%s round %d", fault, round), line, ReportEntryVisibilityAlways)
}
