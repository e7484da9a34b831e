package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/discovery/zookeeper/zktest"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// zkProfile sizes the Discovery-at-scale phase.
type zkProfile struct {
	services, instances int // interface level: services × providers
	apps, appInstances  int // application level: applications × instances
	churnRate           int // instance changes per second
	churnFor            time.Duration
	failoverFor         time.Duration // the churn with a kill -9 of the leader a third into it
}

// zkTS is the registration time of every provider the loader creates.
const zkTS = 1714550000000

// zkScale runs the Discovery-at-scale phase on the server dialects: one
// ZooKeeper per layout, loaded by the bench, then per database a cluster of
// two replica processes that syncs it (and, interface level, follows the
// churn).
func (b *bench) zkScale(ctx context.Context, dialects []string) error {
	var servers []string
	for _, d := range dialects {
		if d != database.SQLite {
			servers = append(servers, d)
		}
	}
	java, cp, missing := zktest.Find()
	if missing != "" {
		for _, d := range servers {
			for _, r := range []string{rowZKSync, rowZKChurn, rowZKFailover, rowZKAppSync} {
				b.set(r, d, "skipped: "+missing)
			}
		}
		return nil
	}
	for _, l := range []zktest.Layout{
		{Services: b.zk.services, Instances: b.zk.instances},
		{Services: b.zk.apps, Instances: b.zk.appInstances, ApplicationLevel: true},
	} {
		if err := b.zkLayout(ctx, java, cp, l, servers); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) zkLayout(ctx context.Context, java, cp string, l zktest.Layout, dialects []string) error {
	dir, err := os.MkdirTemp(b.tmp, "zookeeper-")
	if err != nil {
		return err
	}
	srv, err := zktest.Start(java, cp, dir, zktest.Options{Heap: "1g", NoSync: true})
	if err != nil {
		return err
	}
	defer srv.Stop()
	conns, closeConns, err := dialZK(srv.Addr, 4)
	if err != nil {
		return err
	}
	defer closeConns()
	_, instances, _ := l.Counts()
	progress("zookeeper: loading %s (%d instances)", layoutName(l), instances)
	t0 := time.Now()
	if err := zktest.Load(ctx, conns, l, zkTS); err != nil {
		return err
	}
	b.note("ZooKeeper %s: %d provider nodes created by the bench's loader (zktest.Load, multi requests on %d connections) in %s.",
		layoutName(l), instances, len(conns), short(time.Since(t0)))
	st := newChurnState(l)
	for _, d := range dialects {
		b.record(d, "discovery at scale, "+layoutName(l), b.zkRun(ctx, d, srv.Addr, conns, st))
	}
	return nil
}

func layoutName(l zktest.Layout) string {
	if l.ApplicationLevel {
		return fmt.Sprintf("application level, %d applications × %d instances", l.Services, l.Instances)
	}
	return fmt.Sprintf("interface level, %d services × %d instances", l.Services, l.Instances)
}

func dialZK(addr string, n int) ([]*zk.Conn, func(), error) {
	var conns []*zk.Conn
	var events []<-chan zk.Event
	closeAll := func() {
		for i, c := range conns {
			c.Close()
			for range events[i] {
			}
		}
	}
	for range n {
		c, ev, err := zk.Connect([]string{addr}, 20*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietZK{}))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		conns, events = append(conns, c), append(events, ev)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range conns {
		for c.State() != zk.StateHasSession {
			if time.Now().After(deadline) {
				closeAll()
				return nil, nil, fmt.Errorf("no ZooKeeper session within 30s (state %s)", c.State())
			}
			time.Sleep(10 * time.Millisecond) // bounded wait for the session
		}
	}
	return conns, closeAll, nil
}

type quietZK struct{}

func (quietZK) Printf(string, ...any) {}

// zkRun measures one layout on one database: the first sync with a
// follower reading, then (interface level) the churn.
func (b *bench) zkRun(ctx context.Context, dialect, zkAddr string, conns []*zk.Conn, st *churnState) error {
	l := st.layout
	tdb, drop, err := b.provision(ctx, dialect)
	if err != nil {
		return err
	}
	defer drop()
	observer, err := database.Open(ctx, tdb.Config)
	if err != nil {
		return err
	}
	defer database.Close(observer)
	dir, err := os.MkdirTemp(b.tmp, "zk-replicas-")
	if err != nil {
		return err
	}
	engine := filepath.Join(dir, "engine")
	if err := os.MkdirAll(engine, 0o755); err != nil {
		return err
	}
	registry := "zookeeper://" + zkAddr + "?sessionTimeout=20s"

	t0 := time.Now()
	var reps []*replica
	defer func() {
		for _, r := range reps {
			r.stop()
		}
		b.noteFailStops(dir, dialectName(dialect)+", "+layoutName(l))
	}()
	for i := range 2 {
		r, err := startReplica(ctx, b.binary, tdb.Config, registry, "file://"+engine, filepath.Join(dir, fmt.Sprintf("replica-%d.log", i)))
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	lead, err := leaderOf(ctx, reps)
	if err != nil {
		return err
	}
	follower := reps[1-lead]

	reads := &readStats{}
	rctx, stopReads := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { reads.loop(rctx, follower.url+"/api/v1/resources/"+discovery.KindInstance+"?limit=100") })
	want := st.counts()
	err = waitCounts(ctx, observer, want, 10*time.Minute)
	synced := time.Since(t0)
	stopReads()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("first sync: %w (replica logs in %s)", err, dir)
	}
	tag := "interface"
	if l.ApplicationLevel {
		tag = "application"
	}
	b.captureProfile(ctx, reps[lead].url, "heap?gc=1", dialect+"-"+tag+"-heap.pb.gz",
		dialectName(dialect)+", "+layoutName(l)+": the leader's heap (in use) when its first sync completed")
	peak, _ := procStatus(reps[lead].cmd.Process.Pid, "VmHWM:")
	cur, _ := procStatus(reps[lead].cmd.Process.Pid, "VmRSS:")
	fpeak, _ := procStatus(follower.cmd.Process.Pid, "VmHWM:")
	rowSync := rowZKSync
	if l.ApplicationLevel {
		rowSync = rowZKAppSync
	}
	b.set(rowSync, dialect, fmt.Sprintf("%s; leader RSS peak %s (%s after); follower reads %s (peak RSS %s)",
		secs(synced), mib(peak), mib(cur), reads.String(), mib(fpeak)))
	if l.ApplicationLevel || b.zk.churnFor == 0 {
		return nil
	}
	if err := b.zkChurn(ctx, dialect, observer, conns, st, churnRun{row: rowZKChurn, dur: b.zk.churnFor, profile: reps[lead].url}); err != nil {
		return err
	}
	// The same churn again, with a kill -9 of the leader a third into it:
	// the follower takes over and its first sync must catch up.
	// A replica that exited meanwhile (a fail-stop: see the notes) is
	// started again first, so that there is a follower to take over.
	for i, r := range reps {
		select {
		case <-r.exited:
			b.note("%s, %s: replica %d exited during the sync or the churn; started again before the failover churn", dialectName(dialect), layoutName(l), i)
			if reps[i], err = startReplica(ctx, b.binary, tdb.Config, registry, "file://"+engine, filepath.Join(dir, fmt.Sprintf("replica-%d-again.log", i))); err != nil {
				return err
			}
		default:
		}
	}
	killLeader := func() (string, error) {
		li, err := leaderOf(ctx, reps)
		if err != nil {
			return "", err
		}
		killed := time.Now()
		_ = reps[li].cmd.Process.Kill()
		<-reps[li].exited
		if _, err := leaderOf(ctx, []*replica{reps[1-li]}); err != nil {
			return "", err
		}
		return fmt.Sprintf("the follower leads %s after the kill", ms(time.Since(killed))), nil
	}
	return b.zkChurn(ctx, dialect, observer, conns, st, churnRun{row: rowZKFailover, dur: b.zk.failoverFor, fault: killLeader})
}

// churnRun is one churn: the row it fills, how long it runs, and a fault
// to inject a third into it (nil: none), which says what happened.
type churnRun struct {
	row   string
	dur   time.Duration
	fault func() (string, error)
	// profile, if set, is the leader's URL: a CPU profile of the middle
	// third of the churn is taken there.
	profile string
}

// replica is one dubbo-admin process of the Discovery bench.
type replica struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	log    *os.File
}

// startReplica starts `dubbo-admin run` on the database and registry,
// with the DSN in the environment, and waits until it serves HTTP.
func startReplica(ctx context.Context, binary string, db database.Config, registry, engine, logPath string) (*replica, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "run", "--store", "gorm", "--registry", registry, "--engine", engine,
		"--http-address", addr, "--log-format", "json", "--log-level", "info")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ADMIN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "ADMIN_DATABASE_DRIVER="+db.Driver, "ADMIN_DATABASE_DSN="+db.DSN, "ADMIN_HTTP_PPROF=true")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start replica: %w", err)
	}
	r := &replica{cmd: cmd, url: "http://" + addr, exited: make(chan struct{}), log: logFile}
	go func() { // owned by r: stop waits for it
		_ = cmd.Wait()
		_ = logFile.Close()
		close(r.exited)
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := statusClient.Get(r.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.exited:
			return nil, fmt.Errorf("replica exited during start-up (log %s)", logPath)
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond): // readiness poll
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("replica not ready within a minute (log %s)", logPath)
		}
	}
}

// stop sends SIGTERM, then SIGKILL after 10s, and waits for the exit.
func (r *replica) stop() {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

// leaderOf waits until one of reps leads and returns its index.
func leaderOf(ctx context.Context, reps []*replica) (int, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for i, r := range reps {
			var st runtime.Status
			if err := getJSON(ctx, r.url+"/api/v1/status", &st); err == nil && st.Role == runtime.RoleLeading {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	return 0, errors.New("no replica leads within a minute")
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// readStats are a follower's reads of the store during the first sync.
type readStats struct {
	lat    durations
	failed int
}

// loop reads url back to back (one request at a time) until ctx ends.
func (s *readStats) loop(ctx context.Context, url string) {
	for ctx.Err() == nil {
		var page struct{ Items []json.RawMessage }
		t0 := time.Now()
		err := getJSON(ctx, url, &page)
		switch {
		case err == nil:
			s.lat = append(s.lat, time.Since(t0))
		case ctx.Err() == nil:
			s.failed++
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // one read per 50ms, not a load test
		}
	}
}

func (s *readStats) String() string {
	if len(s.lat) == 0 {
		return fmt.Sprintf("none served, %d failed", s.failed)
	}
	return fmt.Sprintf("p50 %s / p99 %s (n=%d, %d failed)", ms(s.lat.quantile(0.5)), ms(s.lat.quantile(0.99)), len(s.lat), s.failed)
}

// waitCounts polls the resources table until each kind holds want rows.
func waitCounts(ctx context.Context, db *gorm.DB, want map[string]int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var got map[string]int
	for time.Now().Before(deadline) {
		got = map[string]int{}
		var rows []struct {
			Kind string
			N    int
		}
		if err := db.WithContext(ctx).Raw(`SELECT kind, COUNT(*) AS n FROM resources GROUP BY kind`).Scan(&rows).Error; err == nil {
			for _, r := range rows {
				got[r.Kind] = r.N
			}
			done := true
			for k, n := range want {
				done = done && got[k] == n
			}
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // a COUNT per 100ms
		}
	}
	return fmt.Errorf("store holds %v after %s, want %v", got, limit, want)
}

// procStatus reads a kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// churnState is the registry as the churns made it (they run one after
// the other, one per database, on the same registry): each provider's
// registration time, or absent; and the current churn's registrations not
// seen in the store yet.
type churnState struct {
	layout zktest.Layout
	order  [][2]int // the providers in the order the churns pick them
	next   int      // the next in order
	gone   []deregistration

	mu      sync.Mutex
	ts      map[[2]int]int64 // (service, provider) -> registered at; absent: deregistered
	pending map[string]int64 // instance key -> registration not seen in the store yet
	lags    durations
	failed  int
	// after is the fault's instant (Unix ms; 0: none yet), lagsAfter the
	// lags of the registrations made after it.
	after     int64
	lagsAfter durations
}

type deregistration struct {
	p  [2]int
	at time.Time
}

func newChurnState(l zktest.Layout) *churnState {
	st := &churnState{layout: l, ts: map[[2]int]int64{}}
	for i := range l.Services {
		for j := range l.Instances {
			st.ts[[2]int{i, j}] = zkTS
			st.order = append(st.order, [2]int{i, j})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(st.order), func(a, c int) { st.order[a], st.order[c] = st.order[c], st.order[a] })
	return st
}

// pick returns a re-registration of the next registered provider in order
// (the caller advances next when it uses it).
func (st *churnState) pick() op {
	st.mu.Lock()
	defer st.mu.Unlock()
	for {
		p := st.order[st.next%len(st.order)]
		if ts, ok := st.ts[p]; ok {
			return op{p: p, old: ts}
		}
		st.next++
	}
}

// op is one change of the churn.
type op struct {
	kind int // 0 re-register, 1 deregister, 2 register
	p    [2]int
	old  int64
}

// counts are the resources Admin derives from the registry as it is now.
func (st *churnState) counts() map[string]int {
	st.mu.Lock()
	defer st.mu.Unlock()
	apps, services := map[string]bool{}, map[int]bool{}
	for p := range st.ts {
		apps[st.layout.App(p[0])] = true
		services[p[0]] = true
	}
	if st.layout.ApplicationLevel {
		services = nil
	}
	return map[string]int{discovery.KindApplication: len(apps), discovery.KindInstance: len(st.ts), discovery.KindService: len(services)}
}

// zkChurn changes b.zk.churnRate instances per second for b.zk.churnFor:
// 8 in 10 re-register (a new URL with a new timestamp, in one multi
// request), 1 deregisters, 1 registers one that was deregistered at least
// 2s earlier. Each provider is picked at most once, except to come back.
// The lag of a registration is the store row's updated_at (the leader's
// clock as it wrote) minus the registration's timestamp (taken just before
// the request); both clocks are this machine's.
func (b *bench) zkChurn(ctx context.Context, dialect string, db *gorm.DB, conns []*zk.Conn, st *churnState, run churnRun) error {
	l := st.layout
	st.mu.Lock()
	st.pending, st.lags, st.failed, st.after, st.lagsAfter = map[string]int64{}, nil, 0, 0, nil
	st.mu.Unlock()
	var (
		faults      sync.WaitGroup
		faultResult string
		faultErr    error
	)
	defer faults.Wait()
	if run.profile != "" {
		faults.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(run.dur / 3):
			}
			secs := max(int(run.dur.Seconds()/3), 1)
			b.captureProfile(ctx, run.profile, fmt.Sprintf("profile?seconds=%d", secs), dialect+"-churn-cpu.pb.gz",
				fmt.Sprintf("%s, churn: the leader's CPU over %ds in the middle of it", dialectName(dialect), secs))
		})
	}

	octx, stopObserve := context.WithCancel(ctx)
	var observer sync.WaitGroup
	observer.Go(func() { st.observe(octx, db) })
	defer func() {
		stopObserve()
		observer.Wait()
	}()

	ops := make(chan op, b.zk.churnRate)
	var workers sync.WaitGroup
	for w := range 4 * len(conns) {
		conn := conns[w%len(conns)]
		workers.Go(func() {
			for o := range ops {
				ts := time.Now().UnixMilli()
				var err error
				switch o.kind {
				case 0:
					err = zktest.Reregister(conn, l, o.p[0], o.p[1], o.old, ts)
				case 1:
					err = zktest.Deregister(conn, l, o.p[0], o.p[1], o.old)
				case 2:
					err = zktest.Register(conn, l, o.p[0], o.p[1], ts)
				}
				st.mu.Lock()
				switch {
				case err != nil:
					st.failed++
				case o.kind == 1:
					delete(st.ts, o.p)
				default:
					st.ts[o.p] = ts
					st.pending[l.InstanceKey(o.p[0], o.p[1])] = ts
				}
				st.mu.Unlock()
			}
		})
	}
	sent := 0
	tick := time.NewTicker(10 * time.Millisecond)
	t0 := time.Now()
	for time.Since(t0) < run.dur && ctx.Err() == nil {
		<-tick.C
		if run.fault != nil && time.Since(t0) >= run.dur/3 {
			fault := run.fault
			run.fault = nil
			st.mu.Lock()
			st.after = time.Now().UnixMilli()
			st.mu.Unlock()
			faults.Go(func() { faultResult, faultErr = fault() })
		}
		due := int(time.Since(t0).Seconds()*float64(b.zk.churnRate)) - sent
		for ; due > 0 && time.Since(t0) < run.dur; due-- {
			o := st.pick()
			switch {
			case sent%10 == 1 && len(st.gone) > 0 && time.Since(st.gone[0].at) > 2*time.Second:
				o = op{kind: 2, p: st.gone[0].p}
				st.gone = st.gone[1:]
			case sent%10 == 0:
				o.kind = 1
				st.gone = append(st.gone, deregistration{o.p, time.Now()})
				st.next++
			default:
				st.next++
			}
			ops <- o
			sent++
		}
	}
	tick.Stop()
	close(ops)
	workers.Wait()
	rate := rate(int64(sent), time.Since(t0))
	faults.Wait()
	if faultErr != nil {
		return fmt.Errorf("churn: fault: %w", faultErr)
	}

	// Settle: every registration seen, then compare the whole kind.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st.mu.Lock()
		left := len(st.pending)
		st.mu.Unlock()
		if left == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // poll of the observer's progress
		}
	}
	stopObserve()
	observer.Wait()
	lost, extra, err := st.compare(ctx, db, l)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.lags) == 0 {
		return errors.New("churn: no registration reached the store")
	}
	result := fmt.Sprintf("%.0f changes/s for %s: lag p50 %s / p99 %s / max %s (n=%d, %d never seen); lost %d, resurrected %d; %d requests failed",
		rate, short(run.dur), ms(st.lags.quantile(0.5)), ms(st.lags.quantile(0.99)), ms(st.lags.max()), len(st.lags), len(st.pending), lost, extra, st.failed)
	if faultResult != "" {
		if len(st.lagsAfter) == 0 {
			return errors.New("churn: no registration made after the fault reached the store")
		}
		result = fmt.Sprintf("%s; registrations made after the kill: lag p50 %s / p99 %s / max %s (n=%d); whole churn: %s",
			faultResult, ms(st.lagsAfter.quantile(0.5)), ms(st.lagsAfter.quantile(0.99)), ms(st.lagsAfter.max()), len(st.lagsAfter), result)
	}
	b.set(run.row, dialect, result)
	return nil
}

type instanceRow struct {
	ResKey    string
	Spec      string
	UpdatedAt int64
}

func instanceTS(spec string) int64 {
	var in struct {
		UpdatedAt time.Time `json:"updatedAt"`
	}
	if json.Unmarshal([]byte(spec), &in) != nil {
		return 0
	}
	return in.UpdatedAt.UnixMilli()
}

// observe reads the Instance rows written since its last pass (with a
// margin: updated_at is taken before the commit) and records the lag of
// each pending registration that arrived.
func (st *churnState) observe(ctx context.Context, db *gorm.DB) {
	since := time.Now().Add(-time.Second).UnixMilli()
	for ctx.Err() == nil {
		pass := time.Now().Add(-5 * time.Second).UnixMilli()
		var rows []instanceRow
		err := db.WithContext(ctx).Raw(`SELECT res_key, spec, updated_at FROM resources WHERE kind = ? AND updated_at >= ?`,
			discovery.KindInstance, since).Scan(&rows).Error
		if err == nil {
			since = pass
			st.mu.Lock()
			for _, r := range rows {
				if ts, ok := st.pending[r.ResKey]; ok && instanceTS(r.Spec) == ts {
					lag := time.Duration(r.UpdatedAt-ts) * time.Millisecond
					st.lags = append(st.lags, lag)
					if st.after > 0 && ts >= st.after {
						st.lagsAfter = append(st.lagsAfter, lag)
					}
					delete(st.pending, r.ResKey)
				}
			}
			st.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond): // observer's poll
		}
	}
}

// compare reads every Instance row and counts the registered providers
// missing or stale in the store (lost) and the rows of deregistered ones
// (resurrected).
func (st *churnState) compare(ctx context.Context, db *gorm.DB, l zktest.Layout) (lost, extra int, err error) {
	var rows []instanceRow
	if err := db.WithContext(ctx).Raw(`SELECT res_key, spec, updated_at FROM resources WHERE kind = ?`, discovery.KindInstance).Scan(&rows).Error; err != nil {
		return 0, 0, fmt.Errorf("churn: read instances: %w", err)
	}
	stored := make(map[string]int64, len(rows))
	for _, r := range rows {
		stored[r.ResKey] = instanceTS(r.Spec)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for p, ts := range st.ts {
		key := l.InstanceKey(p[0], p[1])
		if got, ok := stored[key]; !ok || got != ts {
			lost++
		}
		delete(stored, key)
	}
	return lost, len(stored), nil
}

// zkProfileFor is the phase's size per profile.
func zkProfileFor(quick bool) zkProfile {
	if quick {
		return zkProfile{services: 500, instances: 10, apps: 200, appInstances: 10, churnRate: 200, churnFor: 10 * time.Second, failoverFor: 9 * time.Second}
	}
	return zkProfile{services: 10_000, instances: 10, apps: 10_000, appInstances: 10, churnRate: 1000, churnFor: time.Minute, failoverFor: 30 * time.Second}
}

// noteFailStops notes every fail-stop that a replica of the run in dir
// logged: a term that ended while its components could not return in time.
func (b *bench) noteFailStops(dir, run string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "replica-*.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(data)) {
			if !strings.Contains(line, `"msg":"fail-stop`) {
				continue
			}
			var l struct {
				TS    string `json:"ts"`
				Error string `json:"error"`
			}
			_ = json.Unmarshal([]byte(line), &l)
			b.note("%s: %s fail-stopped at %s: %s", run, filepath.Base(path), l.TS, l.Error)
		}
	}
}
