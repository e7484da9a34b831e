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

// cluster is a process cluster of one Ordered container and the state of
// its fault rounds.
type cluster struct {
	*harness.Processes
	src    *harness.Source
	label  string  // in the report: the dialect or the backend
	term   int64   // the current leader's term
	exempt []int64 // terms frozen by SIGSTOP: their intervals may overlap a successor's
	round  int
}

// startCluster starts three replica processes of cfg on a fresh source,
// waits for a leader and checks the first round's invariants. The cluster
// is closed when the container ends, after printing its timeline if a spec
// failed.
func startCluster(ctx context.Context, label string, cfg harness.ProcessConfig) *cluster {
	GinkgoHelper()
	k := &cluster{src: newSource(), label: label}
	cfg.Binary, cfg.Source, cfg.Dir = binary(ctx), k.src, GinkgoT().TempDir()
	var err error
	k.Processes, err = harness.StartProcesses(ctx, 3, cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			if tl, err := k.Timeline(); err == nil {
				for _, iv := range tl.Intervals() {
					fmt.Fprintln(GinkgoWriter, iv)
				}
			}
		}
		Expect(k.Close()).To(Succeed())
	})
	_, k.term = waitProcessLeader(ctx, k.Processes, 0, time.Now())
	checkProcesses(ctx, k.Processes, k.src)
	return k
}

// fault runs round n of a fault: the leader writes for a moment (so that
// the fault hits a writer), inject strikes it, the source changes, a leader
// of a newer term must come, after runs, and R1, R2 and the store's
// convergence are checked. inject may return the time a successor took,
// when it measured it itself (0: measured here).
func (k *cluster) fault(ctx context.Context, name string, n int, inject func(old int, start time.Time) time.Duration, after func(old int)) {
	GinkgoHelper()
	k.round++
	old, ok, _ := processLeaderIndex(ctx, k.Processes, k.term)
	Expect(ok).To(BeTrue(), "replica of term %d leads", k.term)
	stopChurn := k.src.Churn("churn.yaml", 20*time.Millisecond)
	Eventually(ctx, func() (map[int64]int64, error) { return k.WriteLog.TermsWritten(ctx) }).
		WithTimeout(convergeBound).WithPolling(poll).Should(HaveKeyWithValue(k.term, BeNumerically(">", 5)))
	start := time.Now()
	measured := inject(old, start)
	mutate(k.src, k.round)
	_, newTerm, back := waitProcessLeaderAfter(ctx, k.Processes, k.term, start)
	if measured > 0 {
		back = measured
	}
	Expect(newTerm).To(BeNumerically(">", k.term))
	Expect(stopChurn()).To(Succeed())
	if after != nil {
		after(old)
	}
	conv := checkProcesses(ctx, k.Processes, k.src, k.exempt...)
	report(name+" ("+k.label+")", n, map[string]time.Duration{"leader back": back, "store converged": conv})
	k.term = newTerm
}

// killRounds replaces a leader killed with SIGKILL, rounds times, and
// restarts it.
func (k *cluster) killRounds(ctx context.Context, rounds int) {
	GinkgoHelper()
	for n := 1; n <= rounds; n++ {
		k.fault(ctx, "process SIGKILL", n, func(old int, _ time.Time) time.Duration {
			Expect(k.Kill(old)).To(Succeed())
			return 0
		}, func(old int) { Expect(k.Restart(ctx, old)).To(Succeed()) })
	}
}

// termRounds hands over from a leader sent SIGTERM, rounds times: it must
// exit with status 0, and is restarted.
func (k *cluster) termRounds(ctx context.Context, rounds int) {
	GinkgoHelper()
	for n := 1; n <= rounds; n++ {
		k.fault(ctx, "process SIGTERM", n, func(old int, _ time.Time) time.Duration {
			Expect(k.Term(old)).To(Succeed())
			return 0
		}, func(old int) {
			Eventually(k.Process(old).Exited()).WithTimeout(leaderBound).Should(BeClosed())
			Expect(k.Process(old).ExitError()).NotTo(HaveOccurred(), "a graceful stop exits with status 0")
			Expect(k.Restart(ctx, old)).To(Succeed())
		})
	}
}

// stopRounds freezes the leader with SIGSTOP for longer than lease, rounds
// times, and resumes it with SIGCONT: it must keep running and step down.
// successor judges the election while it was frozen (err: none came within
// wait) and returns the time the successor took, if it measured it.
func (k *cluster) stopRounds(ctx context.Context, rounds int, lease, wait time.Duration, successor func(n, old int, start time.Time, err error) time.Duration) {
	GinkgoHelper()
	for n := 1; n <= rounds; n++ {
		var frozen int64
		k.fault(ctx, "process SIGSTOP", n, func(old int, start time.Time) time.Duration {
			frozen = k.term
			k.exempt = append(k.exempt, frozen)
			Expect(k.Stop(old)).To(Succeed())
			wctx, cancel := context.WithTimeout(ctx, wait)
			_, _, err := k.WaitForLeader(wctx, frozen)
			cancel()
			back := successor(n, old, start, err)
			Eventually(func() time.Duration { return time.Since(start) }).WithTimeout(4 * lease).Should(BeNumerically(">", lease+500*time.Millisecond))
			Expect(k.Cont(old)).To(Succeed())
			return back
		}, func(old int) {
			Expect(k.Process(old).Alive()).To(BeTrue(), "the resumed replica keeps running")
			Eventually(ctx, func() (bool, error) {
				info, err := k.Info(ctx, old)
				return info.Self.Leading && info.Self.Term == frozen, err
			}).WithTimeout(leaderBound).WithPolling(poll).Should(BeFalse(), "the resumed replica steps down")
		})
	}
}

// noLeader waits until no replica leads.
func (k *cluster) noLeader(ctx context.Context, why string) {
	GinkgoHelper()
	Eventually(ctx, func() ([]int, error) { idx, _, err := k.Leaders(ctx); return idx, err }).
		WithTimeout(leaderBound).WithPolling(poll).Should(BeEmpty(), why)
}

// everyAlive checks that no replica exited.
func (k *cluster) everyAlive() {
	GinkgoHelper()
	for i := range k.N() {
		Expect(k.Process(i).Alive()).To(BeTrue(), "replica %d keeps running", i)
	}
}
