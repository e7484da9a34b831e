package main

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// openStore opens a GORM store on a fresh database of dialect with the
// lease held for an hour; it returns a fenced (the term) and an unfenced
// context. stop closes the pool and drops the database.
func (b *bench) openStore(ctx context.Context, dialect string) (*store.GORM, context.Context, context.Context, func(), error) {
	tdb, drop, err := b.provision(ctx, dialect)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	db, err := database.Open(ctx, tdb.Config)
	if err != nil {
		drop()
		return nil, nil, nil, nil, err
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
		s, err = store.NewGORM(db)
	}
	if err == nil {
		err = s.Migrate(ctx)
	}
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	return s, leader.WithTerm(ctx, rec.TermOf()), store.Unfenced(ctx), stop, nil
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
	s, fenced, unfenced, stop, err := b.openStore(ctx, dialect)
	if err != nil {
		return err
	}
	defer stop()
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
	s, fenced, _, stop, err := b.openStore(ctx, dialect)
	if err != nil {
		return err
	}
	defer stop()
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
