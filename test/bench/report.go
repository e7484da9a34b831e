package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
	"github.com/apache/dubbo-admin/test/harness"
)

// Row keys; the timings name is appended where rows come per timings.
const (
	rowCrash      = "crash/"
	rowHandover   = "handover/"
	rowStmts      = "stmts/"
	rowLockCost   = "lock-cost/"
	rowCold       = "cold"
	rowRSS        = "rss"
	rowUpsert     = "upsert"
	rowFiftyCrash = "fifty-crash"
	rowFiftyStmts = "fifty-stmts"
	// The same number of replica processes, default timings.
	rowFiftyProcCrash = "fifty-proc-crash"
	rowFiftyProcStmts = "fifty-proc-stmts"
	rowFiftyProcRSS   = "fifty-proc-rss"
	rowBigReplace     = "replace-big"
	rowBigRenew       = "replace-big-renew"
	rowStream         = "stream"
	rowStreamLat      = "stream-latency"
	rowZKSync         = "zk-sync"
	rowZKChurn        = "zk-churn"
	rowZKFailover     = "zk-failover"
	rowZKAppSync      = "zk-app-sync"
)

// Phases of the bench (-phases, BENCH_PHASES), in the order they run.
const (
	phaseElection  = "election"  // process clusters and statement rates
	phaseStore     = "store"     // upserts, Replace, the source loop's stream
	phaseZooKeeper = "zookeeper" // Discovery on a large registry
	phaseFifty     = "fifty"     // 50 in-process replicas
)

var allPhases = []string{phaseElection, phaseStore, phaseZooKeeper, phaseFifty}

func rowReplace(n int) string { return fmt.Sprintf("replace/%d", n) }

type row struct {
	key, label, floor string
	only              string // the one dialect the row applies to, if any
	servers           bool   // MySQL and PostgreSQL only
	phase             string
}

var allDialects = []string{database.SQLite, database.MySQL, database.Postgres}

func timingsText(c leader.Config) string {
	s := fmt.Sprintf("lease %s, renew deadline %s, retry %s, jitter %.1f, op timeout %s",
		c.LeaseDuration, c.RenewDeadline, c.RetryPeriod, c.JitterFactor, c.OpTimeout)
	if c.FastFailover {
		return s + fmt.Sprintf(", fast failover on (lock window %s, lock check every %s)", c.LockWindow, c.LockCheckPeriod)
	}
	return s + ", fast failover off (lease only)"
}

// floorOf is what bounds a crash failover from below: the lock window's
// takeover wait with fast failover (nothing on SQLite), else the lease.
func floorOf(c leader.Config) string {
	if c.FastFailover {
		return fmt.Sprintf("lock window %s (SQLite: none)", c.LockWindow)
	}
	return fmt.Sprintf("lease %s", c.LeaseDuration)
}

func (b *bench) rows() []row {
	big := []row{
		{key: rowBigReplace, label: fmt.Sprintf("Replace of a large registry (%s; SQLite %s), fenced, chunked: from empty / resync", count(b.bigReplaceN), count(b.bigReplaceNSQLite)), floor: "—", phase: phaseStore},
		{key: rowBigRenew, label: "Lease renew every 1 s on the same database while that Replace runs: p50 / p99 / max", floor: fmt.Sprintf("op timeout %s", defaultTimings().OpTimeout), phase: phaseStore},
	}
	if b.largeReplaceOnly {
		return big
	}
	var rs []row
	for _, t := range b.timings {
		rs = append(rs, row{key: rowCrash + t.name, label: fmt.Sprintf("Crash failover, %s timings (kill -9 → new leader's components running): p50 / p99 / max", t.name),
			floor: floorOf(t.cfg), phase: phaseElection})
	}
	for _, t := range b.timings {
		rs = append(rs, row{key: rowHandover + t.name, label: fmt.Sprintf("Graceful handover, %s timings (SIGTERM → new leader's components running): p50 / p99", t.name),
			floor: "—", phase: phaseElection})
	}
	rs = append(rs, etcdRows()...)
	rs = append(rs, row{key: rowCold, label: "Cold start of one replica (exec → its leader components running): p50 / max", floor: "—", phase: phaseElection})
	for _, t := range b.timings {
		rs = append(rs, row{key: rowStmts + t.name, label: fmt.Sprintf("Statements/s at steady state, %s timings: leader / one follower", t.name), floor: "—", phase: phaseElection})
	}
	for _, t := range b.timings {
		if t.cfg.FastFailover {
			rs = append(rs, row{key: rowLockCost + t.name, label: fmt.Sprintf("Session lock's own statements/s (its connection, not counted above), %s timings: leader / one follower", t.name), floor: "—", phase: phaseElection})
		}
	}
	rs = append(rs,
		row{key: rowUpsert, label: "Fenced / unfenced single upsert throughput: ratio (fenced, unfenced per s)", floor: "—", phase: phaseStore})
	for _, n := range b.replaceSizes {
		rs = append(rs, row{key: rowReplace(n), label: fmt.Sprintf("Replace %dk resources (fenced): from empty / resync", n/1000), floor: "—", phase: phaseStore})
	}
	rs = append(rs, big...)
	rs = append(rs,
		row{key: rowStream, label: fmt.Sprintf("Source loop, stream of %d instance changes, batched `Apply`: fenced / unfenced throughput ratio (fenced, unfenced changes/s)", b.streamN), floor: "≥ 0.9", phase: phaseStore},
		row{key: rowStreamLat, label: "Source loop at 1000 changes/s (fenced): change → committed p50 / p99 / max", floor: "p99 < 200 ms", phase: phaseStore},
		row{key: rowZKSync, label: fmt.Sprintf("Discovery, ZooKeeper %d services × %d instances (interface level): 2 replica processes started → store complete; leader RSS; a follower's reads during the sync", b.zk.services, b.zk.instances),
			floor: "< 10 s; RSS < 300 MiB", servers: true, phase: phaseZooKeeper},
		row{key: rowZKChurn, label: fmt.Sprintf("Discovery, same registry, %d instance changes/s for %s: ZooKeeper → store lag; lost / resurrected instances at the end", b.zk.churnRate, b.zk.churnFor),
			floor: "p99 < 1 s; 0 / 0", servers: true, phase: phaseZooKeeper},
		row{key: rowZKFailover, label: fmt.Sprintf("Discovery, same registry and rate for %s, kill -9 of the leader a third into it: takeover; lag of the changes made after the kill; lost / resurrected at the end", b.zk.failoverFor),
			floor: "within one sync; 0 / 0", servers: true, phase: phaseZooKeeper},
		row{key: rowZKAppSync, label: fmt.Sprintf("Discovery, ZooKeeper %d applications × %d instances (application level): started → store complete; leader RSS; follower reads", b.zk.apps, b.zk.appInstances),
			floor: "< 10 s; RSS < 300 MiB", servers: true, phase: phaseZooKeeper},
		row{key: rowRSS, label: fmt.Sprintf("Resident memory (VmRSS) per replica process, %s timings: leader / follower (max)", b.rssTimings), floor: "—", phase: phaseElection},
		row{key: rowFiftyCrash, label: fmt.Sprintf("%d in-process replicas, fast timings: crash failover p50 / p99 / max", b.fiftyN), floor: floorOf(harness.FastTimings()), only: database.MySQL, phase: phaseFifty},
		row{key: rowFiftyStmts, label: fmt.Sprintf("%d in-process replicas, fast timings: statements/s", b.fiftyN), floor: "—", only: database.MySQL, phase: phaseFifty},
		row{key: rowFiftyProcCrash, label: fmt.Sprintf("%d replica processes, default timings: crash failover (kill -9 → new leader's components running) p50 / p99 / max", b.fiftyN), floor: floorOf(defaultTimings()), only: database.MySQL, phase: phaseFifty},
		row{key: rowFiftyProcStmts, label: fmt.Sprintf("%d replica processes, default timings: statements/s they send together (election, session lock, membership; the server's Questions), server connections", b.fiftyN), floor: "—", only: database.MySQL, phase: phaseFifty},
		row{key: rowFiftyProcRSS, label: fmt.Sprintf("%d replica processes, default timings: resident memory (VmRSS) per replica", b.fiftyN), floor: "—", only: database.MySQL, phase: phaseFifty},
	)
	return slices.DeleteFunc(rs, func(r row) bool { return !b.phases[r.phase] })
}

func (b *bench) cell(r row, d string) string {
	if r.only != "" && d != r.only || r.servers && d == database.SQLite {
		return "—"
	}
	if t, ok := b.cells[r.key][d]; ok {
		return t
	}
	if reason, ok := b.skipped[d]; ok {
		return "skipped: " + reason
	}
	return "failed (see Errors)"
}

// table renders the one table, as Markdown.
func (b *bench) table() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	header := []string{"Measurement", "Floor"}
	for _, d := range allDialects {
		header = append(header, dialectName(d))
	}
	lines := [][]string{header}
	for _, r := range b.rows() {
		line := []string{r.label, r.floor}
		for _, d := range allDialects {
			line = append(line, b.cell(r, d))
		}
		lines = append(lines, line)
	}
	width := make([]int, len(header))
	for _, l := range lines {
		for i, c := range l {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var sb strings.Builder
	for n, l := range lines {
		sb.WriteString("|")
		for i, c := range l {
			fmt.Fprintf(&sb, " %s%s |", c, strings.Repeat(" ", width[i]-len([]rune(c))))
		}
		sb.WriteString("\n")
		if n == 0 {
			sb.WriteString("|")
			for i := range l {
				sb.WriteString(strings.Repeat("-", width[i]+2) + "|")
			}
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

type report struct{ table, markdown string }

func (b *bench) report(ctx context.Context, command, gobench string, wall time.Duration) report {
	table := b.table()
	var md strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&md, format+"\n", args...) }
	profile := "full"
	if b.quick {
		profile = "quick (BENCH_QUICK=1)"
	}
	w("# Benchmarks")
	w("")
	w("Generated by `make bench` (scripts/bench.sh, test/bench); do not edit by hand.")
	w("")
	w("- Date: %s", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	w("- Command: `%s` (profile: %s), wall time %s", command, profile, wall.Round(time.Second))
	w("- Commit: %s", gitDescribe(ctx))
	w("- Machine: %s", machine())
	w("- Go: %s %s/%s", goruntime.Version(), goruntime.GOOS, goruntime.GOARCH)
	for _, d := range allDialects {
		if v := b.versions[d]; v != "" {
			w("- %s: %s", dialectName(d), v)
		}
	}
	w("")
	w("%s", table)
	w("## How these were measured")
	w("")
	for _, t := range b.timings {
		w("- *%s* timings: %s.", t.name, timingsText(t.cfg))
	}
	w("- Failover and handover: a cluster of 3 replica processes (the built binary, `dubbo-admin run`, Discovery and Engine on file sources) per database and per timings, the three databases' clusters running at the same time. Each round waits until one replica leads with its leader components running and the others are Candidates, waits a random time in [0, 2 × retry) so that the action falls at a random phase of the leader's renewals and the followers' polls, takes the time, sends SIGKILL (crash) or SIGTERM (handover) to the leader, and stops the clock at the instant the new leader's last leader component entered Running, as that replica recorded it in its `/api/v1/status` (same machine, same clock). The bench polls every %s to notice the takeover; the poll bounds how late it notices, not the number measured. The old leader's slot is started again before the next round. Percentiles are nearest-rank: with 20 rounds, p99 is the largest.", pollEvery)
	w("- Floor: a new leader can take the lease only once it expired by the database clock, one lease duration after the dead leader's *last renew*, which happened up to one retry period (plus the statement's latency) before the kill. So a crash failover lies between lease − retry and lease plus the takeover's own latency, and values under the lease duration are expected. \"expiry → running\" (p50 / max) is that latency alone: from the dead leader's lease expiry (its row read after the kill; the database clock mapped to the local one) to the new leader's components running. A graceful handover has no floor: the old leader drains, releases the lease, and a follower takes it at its next poll (at most retry × (1 + jitter) later).")
	w("- Fast failover (session lock, issue 13): with it on, a follower waits on the election's session lock (GET_LOCK, pg_advisory_lock, an flock on a side file) and, once it gets it, takes over a lock-fenced lease after lock window × 1.1 + 5ms from the moment its lock call returned (at once on SQLite, whose flock the kernel frees only with the dead process), without waiting for the lease to expire; the *lease-only* rows are the same clusters with `--fast-failover=false`. A late lock check turns the term lease-only (the row first) rather than ending it, until a check fits the window again; the leader grows its lock window (in the row first) while its checks take more than a sixth of it, and shrinks it back once they are fast, so \"lock window\" in the Floor column is the smallest one. A graceful handover wakes the follower blocked on the lock at once. Restarts and the millisecond windows (lock takeovers, handovers, cold starts) run one at a time across the clusters, so that one cluster's process start does not land in another's window; crash rounds that wait for a lease or an etcd session do not. The session lock's own statements (lock checks of the leader every lock-check period, lock waits of the followers, each bounded by a retry period) run on a connection of their own and are counted with `leader.LockObserver` on 3 electors in the bench process.")
	w("- etcd backend: one more cluster of 3 replica processes, electing through a throwaway etcd member on loopback (Debian's etcd-server, `internal/etcdserver`) with `election.backend: etcd`, TTL %s (keep-alives every TTL/6; a leader's term ends 2/3 TTL after its last acknowledged keep-alive), its store and terms on MariaDB, run beside the clusters above; the rounds are the same, the action at a random phase of two keep-alive intervals. Floor: after kill -9 etcd must expire the dead leader's session, TTL after the last keep-alive it received (up to one interval before the kill), then its expiry sweep (every 500 ms) deletes the key and the next candidate's watch fires. A handover revokes the session, which deletes the key at once.", harness.EtcdTTL)
	w("- Cold start: one replica alone on its database (the previous process released the lease on SIGTERM), from just before exec to its leader components running; the first start, which created the tables, is not counted.")
	w("- Statements per second: 3 in-process replicas (test/harness), each with its own pool on which a GORM callback at the end of the Create, Query, Update, Delete, Row and Raw processors counts every statement (BEGIN/COMMIT are not GORM statements and are not counted). Counted over %s once the cluster settled; the harness probe writes only once per term here and the Engine is idle, so this is the election's own cost. \"One follower\" is the mean of the followers.", windows(b))
	w("- Upsert throughput: one goroutine, single `Upsert` calls over 1000 keys, %s fenced and %s unfenced in total, in eight alternating slices; the ratio is fenced/unfenced (below 1: the fence costs).", 2*b.upsertFor, 2*b.upsertFor)
	w("- Replace: one fenced `Replace` of n new resources into an empty kind (from empty, adds/s in brackets), then a resync of the same kind in which a tenth of the specs changed, a twentieth of the keys are new and a twentieth gone.")
	w("- Large Replace: the same two Replaces (from empty, then the resync) of %s resources (%s on SQLite), with the store's default chunks (at most %d rows and about %s per fenced transaction). Meanwhile a goroutine calls `leader.Lease.Renew` on the same database every second, each bounded by the default op timeout (%s), as the leader's renew loop would; its latency covers both Replaces, and a renew that failed or timed out counts as failed.", count(b.bigReplaceN), count(b.bigReplaceNSQLite), store.DefaultReplaceChunkRows, store.DefaultReplaceChunkTime, defaultTimings().OpTimeout)
	w("- Resident memory: VmRSS from /proc/<pid>/status of the replica processes after the rounds.")
	w("- Source loop stream: `source.Loop` (in process, GORM store on its own database) fed by a channel source with an `Identity` view; its batches are `Store.Apply` calls, one fenced transaction each (BatchSize %d, BatchDelay %s). Throughput: %d upserts of new instances handed over as fast as the loop takes them, from the first hand-over to the store's commit event of the last; two unfenced and two fenced streams alternately after a warm-up stream, the ratio is fenced/unfenced. Latency: %s at 1000 changes/s (10 handed over every 10ms, 1000 keys), fenced, from each hand-over to the store's event of its commit (`Subscribe`).",
		source.DefaultBatchSize, source.DefaultBatchDelay, b.streamN, b.streamLatFor)
	w("- Discovery at scale: a ZooKeeper %s (Debian's jars, standalone, forceSync=no) started by the bench and filled by its loader (`zktest.Load`: multi requests of up to 1000 creates on 4 connections) per layout. Interface level: %d interfaces × %d providers, 10 interfaces per application, each provider its own ip:port, so Admin derives %d Instances, %d Services and %d Applications. Application level: %d applications × %d instances under /services. Per database, 2 replica processes of the built binary (`dubbo-admin run --store gorm --registry zookeeper://...`, default timings, DSN in the environment) are started at once; the clock runs from just before the first exec until the resources table (read by the bench's own pool every 100ms) holds every derived resource. RSS: VmHWM (peak) and VmRSS of the leader's process then. Follower reads: `GET /api/v1/resources/Instance?limit=100` on the other replica every 50ms during the sync.",
		"3.8", b.zk.services, b.zk.instances, b.zk.services*b.zk.instances, b.zk.services, (b.zk.services+9)/10, b.zk.apps, b.zk.appInstances)
	w("- Churn: %d instance changes/s for %s on 16 goroutines over 4 ZooKeeper connections, each provider picked at most once: 8 in 10 re-register (delete the URL node and create it with a new timestamp, one multi request), 1 deregisters, 1 registers again one deregistered at least 2s earlier. Lag of a registration: the store row's `updated_at` (the leader's clock as it wrote the batch) minus the new URL's timestamp (taken just before the request), same machine; rows read by the bench every 250ms. At the end, once every registration was seen (or 2 minutes), every Instance row is compared with the registry as the churn left it: lost = a registered provider missing or stale, resurrected = a row of a deregistered one.", b.zk.churnRate, b.zk.churnFor)
	w("- Failover mid-stream: right after that churn, the same churn for %s on the same two replicas, and a third into it the bench sends SIGKILL to the leader: the follower's takeover (until its `/api/v1/status` says Leading, default timings, fast failover on), then its first sync of the whole registry, under the churn. The lag of the registrations made after the kill covers both; \"within one sync\" means their largest lag is about the takeover plus the first sync above. Lost / resurrected as for the churn.", b.zk.failoverFor)
	w("- %d replicas: in-process replicas on one MariaDB database, each with its own pool and counter, fast timings. Crash = `SimulateCrash` (test/harness/bench_inprocess.go): the leader's pool is closed first, then its runtime stopped, so the lease is never released and must expire, as after kill -9. Statements/s over %s: the sum over replicas, the leader's, the followers' mean and the busiest follower's. Start-up is not counted.", b.fiftyN, b.fiftyWindow)
	w("- %d replica processes: the built binary (`dubbo-admin run`, Discovery and Engine on file sources) on one MariaDB database at the default timings (fast failover on), started one after the other. Statements/s: the server's global `Questions` counter over %s once the cluster settled (every statement of every client of the server, the bench's own read of the counter subtracted; nothing else ran against MariaDB then), and `Threads_connected` after it. RSS: VmRSS of each process then. Crash failover: %d rounds as for the 3-process clusters.", b.fiftyN, b.fiftyWindow, b.fiftyRounds)
	if len(b.notes) > 0 {
		w("")
		w("## Notes from this run")
		w("")
		for _, n := range b.notes {
			w("- %s", n)
		}
	}
	if len(b.errs) > 0 {
		w("")
		w("## Errors")
		w("")
		for _, e := range b.errs {
			w("- %s", e)
		}
	}
	if gobench != "" {
		if data, err := os.ReadFile(gobench); err == nil {
			w("")
			w("## Go benchmarks (hot statements)")
			w("")
			w("```")
			for l := range strings.Lines(string(data)) {
				if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "cpu:") || strings.HasPrefix(l, "pkg:") || strings.Contains(l, "SKIP") {
					md.WriteString(l)
				}
			}
			w("```")
		}
	}
	return report{table: table, markdown: md.String()}
}

func gitDescribe(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
		f.Close()
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for l := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	kernel := ""
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%s, %d cores%s%s", model, goruntime.NumCPU(), mem, kernel)
}

func windows(b *bench) string {
	var parts []string
	for _, t := range b.timings {
		parts = append(parts, fmt.Sprintf("%s (%s timings)", b.stmtWindow[t.name], t.name))
	}
	return strings.Join(parts, " or ")
}
