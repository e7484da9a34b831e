package zookeeper

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/go-zookeeper/zk"

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/discovery/zookeeper/zktest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// BenchmarkSync is the bench's Discovery phase in one process, to profile:
// a ZooKeeper of ADMIN_BENCH_SERVICES (10 000) services × 10 providers
// (ADMIN_BENCH_APPLEVEL=1: the application-level layout), Discovery's sync
// loop into a GORM store on ADMIN_BENCH_DIALECT (mysql), unfenced. It
// reports the first sync's time and the peak of the heap in use, and with
// ADMIN_BENCH_CHURN=N re-registers N providers per second for 20s and
// reports the lag of each re-registration to its commit. ADMIN_BENCH_HEAP
// names a file for a heap profile taken at the peak.
func BenchmarkSync(b *testing.B) {
	java, cp, missing := zktest.Find()
	if missing != "" {
		b.Skip(missing)
	}
	services, _ := strconv.Atoi(os.Getenv("ADMIN_BENCH_SERVICES"))
	l := zktest.Layout{Services: max(services, 10_000), Instances: 10, ApplicationLevel: os.Getenv("ADMIN_BENCH_APPLEVEL") == "1"}
	if services > 0 {
		l.Services = services
	}
	dialect := os.Getenv("ADMIN_BENCH_DIALECT")
	if dialect == "" {
		dialect = "mysql"
	}
	srv, err := zktest.Start(java, cp, b.TempDir(), zktest.Options{Heap: "1g", NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	var conns []*zk.Conn
	for range 4 {
		c, ev, err := zk.Connect([]string{srv.Addr}, 20*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
		if err != nil {
			b.Fatal(err)
		}
		defer func() {
			c.Close()
			for range ev {
			}
		}()
		conns = append(conns, c)
	}
	for _, c := range conns {
		for c.State() != zk.StateHasSession {
			time.Sleep(10 * time.Millisecond) // until the session is there
		}
	}
	const ts = 1714550000000
	if err := zktest.Load(context.Background(), conns, l, ts); err != nil {
		b.Fatal(err)
	}
	db := dbtest.Pool(b, "pkg/core/discovery/zookeeper bench", dialect)
	st, err := store.NewGORM(db)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(store.Unfenced(context.Background()))
	defer cancel()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("ADMIN_BENCH_FENCED") == "1" { // a term of a real lease: every write is fenced
		lease, err := leader.NewLease(db)
		if err != nil {
			b.Fatal(err)
		}
		if err := lease.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		rec, err := lease.TryAcquire(ctx, "bench", "bench", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		ctx = leader.WithTerm(ctx, rec.TermOf())
	}
	apps, instances, svcs := l.Counts()
	runtime.GC()

	var peak peakHeap
	stopPeak := peak.watch(os.Getenv("ADMIN_BENCH_HEAP"))
	t0 := time.Now()
	log := logr.Discard()
	if os.Getenv("ADMIN_BENCH_LOG") == "1" {
		log = funcr.New(func(prefix, args string) { b.Logf("%s %s %s", time.Since(t0).Round(time.Millisecond), prefix, args) }, funcr.Options{})
	}
	loop := source.Loop{
		Name: "discovery",
		Open: func(ctx context.Context) (source.Source, error) {
			return Open(ctx, Config{Servers: []string{srv.Addr}}, log)
		},
		View:  discovery.NewView,
		Store: st,
		Log:   log,
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = loop.Run(ctx) })
	defer wg.Wait()
	defer cancel()
	want := map[string]int64{discovery.KindApplication: int64(apps), discovery.KindInstance: int64(instances)}
	if svcs > 0 {
		want[discovery.KindService] = int64(svcs)
	}
	for {
		got, err := st.Counts(ctx)
		if err != nil {
			b.Fatal(err)
		}
		done := true
		for k, n := range want {
			done = done && got[k] == n
		}
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond) // the bench's poll
	}
	b.ReportMetric(time.Since(t0).Seconds(), "sync-s")
	objects, live := stopPeak()
	b.ReportMetric(float64(objects)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(live)/(1<<20), "peak-live-MB")

	rate, _ := strconv.Atoi(os.Getenv("ADMIN_BENCH_CHURN"))
	if rate == 0 || l.ApplicationLevel {
		return
	}
	// Churn: re-register rate providers a second for 20s; the lag of each
	// is from just before its request to the commit of its Instance.
	if os.Getenv("ADMIN_BENCH_OBSERVE") == "1" { // the bench's observer: its query every 250ms
		wg.Go(func() {
			for ctx.Err() == nil {
				var rows []struct {
					ResKey, Spec string
					UpdatedAt    int64
				}
				_ = db.WithContext(ctx).Raw(`SELECT res_key, spec, updated_at FROM resources WHERE kind = ? AND updated_at >= ?`,
					discovery.KindInstance, time.Now().Add(-5*time.Second).UnixMilli()).Scan(&rows).Error
				time.Sleep(250 * time.Millisecond)
			}
		})
	}
	events := st.Subscribe(ctx)
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lags []time.Duration
	var lw sync.WaitGroup
	lw.Go(func() {
		for e := range events {
			if e.Resource.Kind != discovery.KindInstance || e.Type != store.Upserted {
				continue
			}
			var in discovery.Instance
			if json.Unmarshal(e.Resource.Spec, &in) != nil {
				continue
			}
			k := e.Resource.Key + "@" + strconv.FormatInt(in.UpdatedAt.UnixMilli(), 10)
			mu.Lock()
			if t, ok := sent[k]; ok {
				lags = append(lags, time.Since(t))
				delete(sent, k)
			}
			mu.Unlock()
		}
	})
	ops := make(chan [2]int, rate)
	var workers sync.WaitGroup
	for w := range 16 {
		workers.Go(func() {
			for p := range ops {
				now := time.Now() // each provider is re-registered once: its old URL has ts
				at := now.UnixMilli()
				mu.Lock()
				sent[l.InstanceKey(p[0], p[1])+"@"+strconv.FormatInt(at, 10)] = now
				mu.Unlock()
				_ = zktest.Reregister(conns[w%len(conns)], l, p[0], p[1], ts, at)
			}
		})
	}
	churnFor := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("ADMIN_BENCH_CHURN_FOR")); err == nil {
		churnFor = d
	}
	t1 := time.Now()
	n := 0
	for time.Since(t1) < churnFor {
		time.Sleep(10 * time.Millisecond)
		for due := int(time.Since(t1).Seconds()*float64(rate)) - n; due > 0; due-- {
			i := n % l.Services
			ops <- [2]int{i, (n / l.Services) % l.Instances}
			n++
		}
	}
	close(ops)
	workers.Wait()
	time.Sleep(5 * time.Second) // let the last ones land
	cancel()
	lw.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(lags) == 0 {
		b.Fatal("no re-registration reached the store")
	}
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Milliseconds()), "lag-p50-ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Milliseconds()), "lag-p99-ms")
	b.ReportMetric(float64(len(sent)), "never-seen")
}

// peakHeap samples the heap every 20ms: the peak of its objects (live or
// not yet collected: what the process's memory follows) and of the live
// heap as the last GC marked it, with a heap profile at that peak.
type peakHeap struct{ objects, live uint64 }

func (p *peakHeap) watch(profile string) (stop func() (objects, live uint64)) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(s)
			p.objects = max(p.objects, s[0].Value.Uint64())
			if v := s[1].Value.Uint64(); v > p.live {
				p.live = v
				if profile != "" {
					if f, err := os.Create(profile); err == nil {
						_ = pprof.Lookup("heap").WriteTo(f, 0)
						f.Close()
					}
				}
			}
		}
	})
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return p.objects, p.live
	}
}
