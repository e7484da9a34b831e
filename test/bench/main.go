// Command bench measures the leader-elected runtime on SQLite, MariaDB and
// PostgreSQL and writes BENCHMARKS.md: crash failover and graceful handover
// of replica processes, cold start, statements per second of the election,
// fenced against unfenced upserts, Replace, resident memory, and a cluster
// of 50 in-process replicas on one MariaDB. `make bench` runs it through
// scripts/bench.sh; BENCH_QUICK=1 (or -quick) runs a short profile.
//
// Every number is measured by this run. A database server that does not
// answer is reported as skipped, with the reason. Every database the bench
// creates is dropped, and every process it starts is killed, on exit.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/test/harness"
)

// bench holds the profile and collects the results.
type bench struct {
	quick bool
	// largeReplaceOnly runs only the large Replace with renews (-only).
	largeReplaceOnly bool
	rounds           int
	coldRounds       int
	stmtWindow       map[string]time.Duration // per timings name
	upsertFor        time.Duration
	replaceSizes     []int
	// bigReplaceN is the registry Replace measured with the renew latency
	// (bigReplaceNSQLite on SQLite).
	bigReplaceN, bigReplaceNSQLite int
	fiftyN                         int
	fiftyRounds                    int
	fiftyWindow                    time.Duration
	timings                        []named
	rssTimings                     string
	streamN                        int           // changes of the throughput stream
	streamLatFor                   time.Duration // length of the 1000/s stream
	zk                             zkProfile
	phases                         map[string]bool

	binary string
	tmp    string

	mu       sync.Mutex
	cells    map[string]map[string]string // row -> dialect -> text
	notes    []string
	errs     []string
	skipped  map[string]string // dialect -> reason
	versions map[string]string // dialect -> server version
	drops    map[*dbtest.DB]bool
}

type named struct {
	name string
	cfg  leader.Config
}

// leaseOnly is c with the session-lock path off.
func leaseOnly(c leader.Config) leader.Config {
	c.FastFailover = false
	return c
}

func defaultTimings() leader.Config {
	c := leader.DefaultConfig()
	c.Name = harness.Election
	return c
}

func main() {
	quick := flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "short profile: fast timings only, fewer rounds, SQLite and one server (env BENCH_QUICK=1)")
	out := flag.String("out", "BENCHMARKS.md", "the report to write")
	gobench := flag.String("gobench", "", "output of `go test -bench` to include in the report")
	command := flag.String("command", "go run ./test/bench", "the command line to record in the report")
	binary := flag.String("binary", "", "a built dubbo-admin (default: build one)")
	only := flag.String("only", "", `run one measurement alone: "large-replace" (the large Replace with renews; no replica processes)`)
	phases := flag.String("phases", cmp.Or(os.Getenv("BENCH_PHASES"), strings.Join(allPhases, ",")),
		"comma-separated phases to run, of "+strings.Join(allPhases, ", ")+" (env BENCH_PHASES)")
	flag.Parse()
	if *only != "" && *only != "large-replace" {
		fmt.Fprintf(os.Stderr, "bench: -only %q: the only measurement that runs alone is large-replace\n", *only)
		os.Exit(2)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	b := newBench(*quick)
	b.largeReplaceOnly = *only == "large-replace"
	for _, p := range strings.Split(*phases, ",") {
		if !slices.Contains(allPhases, p) {
			fmt.Fprintf(os.Stderr, "bench: unknown phase %q (want %s)\n", p, strings.Join(allPhases, ", "))
			os.Exit(2)
		}
		b.phases[p] = true
	}
	os.Exit(b.run(ctx, *out, *gobench, *command, *binary))
}

func newBench(quick bool) *bench {
	b := &bench{
		quick:    quick,
		cells:    map[string]map[string]string{},
		skipped:  map[string]string{},
		versions: map[string]string{},
		drops:    map[*dbtest.DB]bool{},
		phases:   map[string]bool{},
		zk:       zkProfileFor(quick),
	}
	if quick {
		b.streamN, b.streamLatFor = 2000, 3*time.Second
	} else {
		b.streamN, b.streamLatFor = 10_000, 10*time.Second
	}
	if quick {
		b.rounds, b.coldRounds = 10, 3
		b.stmtWindow = map[string]time.Duration{"fast": 5 * time.Second}
		b.upsertFor = 500 * time.Millisecond
		b.replaceSizes = []int{1000, 10_000}
		b.bigReplaceN, b.bigReplaceNSQLite = 20_000, 10_000
		b.fiftyN, b.fiftyRounds, b.fiftyWindow = 50, 5, 5*time.Second
		b.timings = []named{{"fast", harness.FastTimings()}}
		b.rssTimings = "fast"
	} else {
		b.rounds, b.coldRounds = 30, 5
		b.stmtWindow = map[string]time.Duration{"default": 30 * time.Second, "default lease-only": 30 * time.Second, "fast": 10 * time.Second}
		b.upsertFor = 2 * time.Second
		b.replaceSizes = []int{1000, 10_000, 100_000}
		b.bigReplaceN, b.bigReplaceNSQLite = 1_000_000, 200_000
		b.fiftyN, b.fiftyRounds, b.fiftyWindow = 50, 10, 10*time.Second
		b.timings = []named{{"default", defaultTimings()}, {"default lease-only", leaseOnly(defaultTimings())}, {"fast", harness.FastTimings()}}
		b.rssTimings = "default"
	}
	return b
}

func (b *bench) run(ctx context.Context, out, gobench, command, binary string) int {
	start := time.Now()
	var err error
	if b.tmp, err = os.MkdirTemp("", "dubbo-admin-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if os.Getenv("BENCH_KEEP_TMP") == "1" { // the replicas' logs, for a look after the run
		progress("keeping %s", b.tmp)
	} else {
		defer os.RemoveAll(b.tmp)
	}
	defer b.dropAll()

	b.binary = binary
	if b.binary == "" && !b.largeReplaceOnly {
		progress("building app/dubbo-admin")
		if b.binary, err = harness.BuildBinary(ctx, b.tmp); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}

	dialects := b.available(ctx)
	loads := []string{"start " + loadAvg()}
	if b.largeReplaceOnly {
		for _, d := range dialects {
			b.record(d, "large replace with renews", b.bigReplace(ctx, d))
		}
		return b.finish(ctx, out, gobench, command, start, append(loads, "end "+loadAvg()))
	}

	// Phase 1, concurrently per database: the process clusters (mostly
	// waiting for leases to expire) and the in-process statement counts.
	var wg sync.WaitGroup
	election := dialects
	if !b.phases[phaseElection] {
		election = nil
	} else {
		progress("phase 1: failover, handover, cold start, memory, statement rates on %s", strings.Join(dialectNames(dialects), ", "))
	}
	for _, d := range election {
		for _, tm := range b.timings {
			wg.Go(func() { b.record(d, "process cluster, "+tm.name+" timings", b.processTimings(ctx, d, tm.cfg, tm.name)) })
			wg.Go(func() {
				b.record(d, "statement rates, "+tm.name+" timings", b.statementRows(ctx, d, tm.cfg, tm.name, b.stmtWindow[tm.name]))
			})
			if tm.cfg.FastFailover {
				wg.Go(func() {
					b.record(d, "lock cost, "+tm.name+" timings", b.lockCost(ctx, d, tm.cfg, tm.name, b.stmtWindow[tm.name]))
				})
			}
		}
		wg.Go(func() { b.record(d, "cold start", b.coldStart(ctx, d)) })
		if d == database.MySQL {
			wg.Go(func() { b.record(d, "etcd backend cluster", b.etcdTimings(ctx)) })
		}
	}
	wg.Wait()

	// Phase 2, one at a time: throughput, which would disturb (and be
	// disturbed by) anything running beside it.
	loads = append(loads, "phase 2 "+loadAvg())
	if b.phases[phaseStore] {
		progress("phase 2: upsert throughput, Replace, large Replace with renews, source loop stream")
		for _, d := range dialects {
			b.record(d, "upsert throughput", b.upsertRatio(ctx, d))
			b.record(d, "replace", b.replaces(ctx, d))
			b.record(d, "large replace with renews", b.bigReplace(ctx, d))
			b.record(d, "source loop stream", b.streamRatio(ctx, d))
		}
	}
	if b.phases[phaseZooKeeper] {
		loads = append(loads, "phase 3 "+loadAvg())
		progress("phase 3: Discovery on a large ZooKeeper registry")
		if err := b.zkScale(ctx, dialects); err != nil {
			for _, d := range []string{database.MySQL, database.Postgres} {
				if _, skip := b.skipped[d]; !skip {
					b.record(d, "discovery at scale", err)
				}
			}
		}
	}
	reason, skipFifty := b.skipped[database.MySQL]
	switch {
	case !b.phases[phaseFifty]:
	case skipFifty:
		b.set(rowFiftyCrash, database.MySQL, "skipped: "+reason)
		b.set(rowFiftyStmts, database.MySQL, "skipped: "+reason)
		for _, r := range []string{rowFiftyProcCrash, rowFiftyProcStmts, rowFiftyProcRSS} {
			b.set(r, database.MySQL, "skipped: "+reason)
		}
	default:
		progress("phase 4: %d in-process replicas on MariaDB", b.fiftyN)
		b.record(database.MySQL, "50 replicas", b.fifty(ctx, database.MySQL, b.fiftyN, b.fiftyRounds, b.fiftyWindow))
		b.record(database.MySQL, "50 replica processes", b.fiftyProcesses(ctx, database.MySQL, b.fiftyN, b.fiftyRounds, b.fiftyWindow))
	}

	return b.finish(ctx, out, gobench, command, start, append(loads, "end "+loadAvg()))
}

// finish writes the report and returns the exit status.
func (b *bench) finish(ctx context.Context, out, gobench, command string, start time.Time, loads []string) int {
	b.note("Load average (1, 5, 15 min) at %s: other work on this machine, if any, shares its cores and database servers.", strings.Join(loads, "; "))
	wall := time.Since(start)
	report := b.report(ctx, command, gobench, wall)
	fmt.Print(report.table)
	if err := os.WriteFile(out, []byte(report.markdown), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Printf("\nwall time %s; wrote %s\n", wall.Round(time.Second), out)
	if len(b.errs) > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// available decides which dialects run: SQLite always; a server when it
// answers (quick: SQLite and the first server that answers).
func (b *bench) available(ctx context.Context) []string {
	var out []string
	only := os.Getenv("BENCH_DIALECTS")
	for _, d := range allDialects {
		if only != "" && !slices.Contains(strings.Split(only, ","), d) {
			b.skip(d, "not in BENCH_DIALECTS="+only)
			continue
		}
		if b.quick && len(out) == 2 {
			b.skip(d, "the quick profile runs SQLite and one server")
			continue
		}
		tdb, reason, err := dbtest.Provision(ctx, d)
		switch {
		case err != nil:
			b.skip(d, err.Error())
		case reason != "":
			b.skip(d, reason)
		default:
			b.versions[d] = serverVersion(ctx, tdb)
			if err := tdb.Drop(ctx); err != nil {
				b.note("could not drop a %s database: %v", dialectName(d), err)
			}
			out = append(out, d)
		}
	}
	return out
}

// serverVersion asks the database for its version.
func serverVersion(ctx context.Context, tdb *dbtest.DB) string {
	db, err := tdb.Open(ctx)
	if err != nil {
		return "unknown version: " + err.Error()
	}
	defer database.Close(db)
	q := "SELECT version()"
	if tdb.Dialect == database.SQLite {
		q = "SELECT sqlite_version()"
	}
	var v string
	if err := db.WithContext(ctx).Raw(q).Scan(&v).Error; err != nil {
		return "unknown version: " + err.Error()
	}
	return v
}

func (b *bench) skip(dialect, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.skipped[dialect] = reason
}

// provision creates a throwaway database; drop removes it (also done at
// exit for any that is left).
func (b *bench) provision(ctx context.Context, dialect string) (harness.Database, func(), error) {
	tdb, reason, err := dbtest.Provision(ctx, dialect)
	if err != nil {
		return harness.Database{}, nil, err
	}
	if reason != "" {
		return harness.Database{}, nil, fmt.Errorf("%s: %s", dialect, reason)
	}
	b.mu.Lock()
	b.drops[tdb] = true
	b.mu.Unlock()
	drop := func() {
		b.mu.Lock()
		pending := b.drops[tdb]
		delete(b.drops, tdb)
		b.mu.Unlock()
		if !pending {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tdb.Drop(ctx); err != nil {
			b.note("could not drop a %s database: %v", dialectName(dialect), err)
		}
	}
	return harness.FromDBTest(tdb), drop, nil
}

func (b *bench) dropAll() {
	b.mu.Lock()
	left := make([]*dbtest.DB, 0, len(b.drops))
	for d := range b.drops {
		left = append(left, d)
	}
	b.drops = map[*dbtest.DB]bool{}
	b.mu.Unlock()
	for _, d := range left {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = d.Drop(ctx)
		cancel()
	}
}

func (b *bench) set(row, dialect, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cells[row] == nil {
		b.cells[row] = map[string]string{}
	}
	b.cells[row][dialect] = text
}

func (b *bench) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// record keeps a failed measurement's error for the report.
func (b *bench) record(dialect, what string, err error) {
	if err == nil {
		progress("%s: %s done", dialectName(dialect), what)
		return
	}
	progress("%s: %s FAILED: %v", dialectName(dialect), what, err)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, fmt.Sprintf("%s, %s: %v", dialectName(dialect), what, err))
}

func dialectName(d string) string {
	switch d {
	case database.SQLite:
		return "SQLite"
	case database.MySQL:
		return "MariaDB"
	case database.Postgres:
		return "PostgreSQL"
	}
	return d
}

func dialectNames(ds []string) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = dialectName(d)
	}
	return out
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
