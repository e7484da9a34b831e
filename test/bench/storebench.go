package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// openedStore is a GORM store on a fresh database of one dialect with the
// lease held for an hour by term; fenced carries the term, unfenced none.
// stop closes the pool and drops the database.
type openedStore struct {
	s                *store.GORM
	fenced, unfenced context.Context
	lease            *leader.Lease
	term             leader.Term
	stop             func()
}

func (b *bench) openStore(ctx context.Context, dialect string, opts ...store.Option) (openedStore, error) {
	tdb, drop, err := b.provision(ctx, dialect)
	if err != nil {
		return openedStore{}, err
	}
	db, err := database.Open(ctx, tdb.Config)
	if err != nil {
		drop()
		return openedStore{}, err
	}
	stop := func() { _ = database.Close(db); drop() }
	lease, err := leader.NewLease(db)
	if err == nil {
		err = lease.Migrate(ctx)
	}
	var rec leader.Record
	if err == nil {
		rec, err = lease.TryAcquire(ctx, "bench", "bench-holder", time.Hour)
	}
	var s *store.GORM
	if err == nil {
		s, err = store.NewGORM(db, opts...)
	}
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		stop()
		return openedStore{}, err
	}
	return openedStore{s: s, fenced: leader.WithTerm(ctx, rec.TermOf()), unfenced: store.Unfenced(ctx),
		lease: lease, term: rec.TermOf(), stop: stop}, nil
}

func resource(kind, key, app, spec string) store.Resource {
	return store.Resource{Kind: kind, Key: key, Labels: map[string]string{"app": app}, Spec: []byte(spec)}
}

// upserts runs single upserts of 1000 keys in turn for d; it returns how
// many it did.
func upserts(ctx context.Context, s *store.GORM, kind string, d time.Duration) (int64, time.Duration, error) {
	var n int64
	t0 := time.Now()
	for time.Since(t0) < d {
		r := resource(kind, fmt.Sprintf("k%04d", n%1000), "a", `{"ip":"10.0.0.1","port":20880}`)
		if _, err := s.Upsert(ctx, r); err != nil {
			return n, time.Since(t0), err
		}
		n++
	}
	return n, time.Since(t0), nil
}

// upsertRatio measures fenced and unfenced single upserts, alternating
// eight times so that a drift of the machine hits both alike.
func (b *bench) upsertRatio(ctx context.Context, dialect string) error {
	o, err := b.openStore(ctx, dialect)
	if err != nil {
		return err
	}
	defer o.stop()
	s, fenced, unfenced := o.s, o.fenced, o.unfenced
	var nf, nu int64
	var tf, tu time.Duration
	for range 8 {
		n, t, err := upserts(unfenced, s, "BenchUnfenced", b.upsertFor/4)
		if err != nil {
			return fmt.Errorf("unfenced upsert: %w", err)
		}
		nu, tu = nu+n, tu+t
		n, t, err = upserts(fenced, s, "BenchFenced", b.upsertFor/4)
		if err != nil {
			return fmt.Errorf("fenced upsert: %w", err)
		}
		nf, tf = nf+n, tf+t
	}
	f, u := rate(nf, tf), rate(nu, tu)
	b.set(rowUpsert, dialect, fmt.Sprintf("%.2f (%.0f / %.0f per s)", f/u, f, u))
	return nil
}

// replaceItems is a relist of n resources; generation gen changes a tenth
// of the specs, renames a twentieth of the keys (5% new, 5% gone) against
// generation gen-1, like the Go benchmark's resync.
func replaceItems(kind string, n, gen int) []store.Resource {
	out := make([]store.Resource, n)
	for i := range out {
		key, spec := fmt.Sprintf("instance-%06d", i), `{"ip":"10.0.0.1","port":20880}`
		if i%10 == 0 {
			spec = fmt.Sprintf(`{"ip":"10.0.0.1","port":20880,"gen":%d}`, gen)
		}
		if i%20 == 1 {
			key = fmt.Sprintf("instance-g%d-%06d", gen, i)
		}
		out[i] = resource(kind, key, fmt.Sprintf("app-%d", i%50), spec)
	}
	return out
}

// replaces measures, per size, the first fenced Replace (all adds) and a
// resync (a tenth updated, a twentieth added, a twentieth deleted).
func (b *bench) replaces(ctx context.Context, dialect string) error {
	o, err := b.openStore(ctx, dialect)
	if err != nil {
		return err
	}
	defer o.stop()
	s, fenced := o.s, o.fenced
	for _, n := range b.replaceSizes {
		kind := fmt.Sprintf("BenchReplace%d", n)
		first, next := replaceItems(kind, n, 1), replaceItems(kind, n, 2)
		t0 := time.Now()
		res, err := s.Replace(fenced, kind, first)
		empty := time.Since(t0)
		if err != nil {
			return fmt.Errorf("replace %d from empty: %w", n, err)
		}
		if res.Added != n {
			return fmt.Errorf("replace %d from empty added %d", n, res.Added)
		}
		t0 = time.Now()
		res, err = s.Replace(fenced, kind, next)
		resync := time.Since(t0)
		if err != nil {
			return fmt.Errorf("replace %d resync: %w", n, err)
		}
		b.set(rowReplace(n), dialect, fmt.Sprintf("%s / %s (%.0f adds/s)", short(empty), short(resync), rate(int64(n), empty)))
		_ = res
	}
	return nil
}

// bigReplace measures one fenced Replace of a large registry into an empty
// kind, then a resync of it (as replaces does), while a goroutine renews
// the lease every second on the same database, each renew bounded by the
// default op timeout; it reports both Replace times and the renew latency.
func (b *bench) bigReplace(ctx context.Context, dialect string) error {
	n := b.bigReplaceN
	if dialect == database.SQLite {
		n = b.bigReplaceNSQLite
	}
	o, err := b.openStore(ctx, dialect)
	if err != nil {
		return err
	}
	defer o.stop()
	kind := "BenchReplaceBig"
	stopRenews := renewEvery(ctx, o.lease, o.term, time.Second, defaultTimings())
	t0 := time.Now()
	res, err := o.s.Replace(o.fenced, kind, replaceItems(kind, n, 1))
	empty := time.Since(t0)
	if err == nil && res.Added != n {
		err = fmt.Errorf("added %d", res.Added)
	}
	if err != nil {
		stopRenews()
		return fmt.Errorf("replace %d from empty: %w", n, err)
	}
	t0 = time.Now()
	_, err = o.s.Replace(o.fenced, kind, replaceItems(kind, n, 2))
	resync := time.Since(t0)
	lat, failed := stopRenews()
	if err != nil {
		return fmt.Errorf("replace %d resync: %w", n, err)
	}
	b.set(rowBigReplace, dialect, fmt.Sprintf("%s: %s / %s (%.0f adds/s)", count(n), short(empty), short(resync), rate(int64(n), empty)))
	text := "no renew completed"
	if len(lat) > 0 {
		text = p50p99max(lat)
	}
	b.set(rowBigRenew, dialect, fmt.Sprintf("%s, %d failed", text, failed))
	b.note("%s: peak resident memory of the bench process after the %s Replace (it holds the source items itself): %s.", dialectName(dialect), count(n), peakRSS())
	return nil
}

// renewEvery renews t's lease every period with the op timeout of cfg
// until the returned stop is called; stop returns the latency of every
// renew and how many failed.
func renewEvery(ctx context.Context, lease *leader.Lease, t leader.Term, period time.Duration, cfg leader.Config) func() (durations, int) {
	var (
		lat    durations
		failed int
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			opCtx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
			t0 := time.Now()
			_, err := lease.Renew(opCtx, t, cfg.LeaseDuration, 0)
			lat = append(lat, time.Since(t0))
			cancel()
			if err != nil {
				failed++
			}
		}
	}()
	return func() (durations, int) {
		close(done)
		<-finished
		return lat, failed
	}
}

// count writes n as 1M, 200k or 950.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// peakRSS is VmHWM of this process.
func peakRSS() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for l := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return fmt.Sprintf("%.0f MiB", float64(kb)/1024)
		}
	}
	return "unknown"
}
