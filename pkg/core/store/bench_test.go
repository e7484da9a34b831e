package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// benchStore opens a throwaway database of dialect with the lease and the
// store migrated, and returns the store with a fenced and an unfenced
// context. It skips when the dialect's server is absent.
func benchStore(b *testing.B, dialect string) (s *store.GORM, fenced, unfenced context.Context) {
	b.Helper()
	ctx := context.Background()
	db := dbtest.Pool(b, "pkg/core/store benchmarks", dialect)
	lease, err := leader.NewLease(db)
	if err != nil {
		b.Fatal(err)
	}
	if err := lease.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	rec, err := lease.TryAcquire(ctx, "bench", "bench-holder", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	s, err = store.NewGORM(db)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return s, leader.WithTerm(ctx, rec.TermOf()), store.Unfenced(ctx)
}

func BenchmarkUpsert(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s, fenced, unfenced := benchStore(b, dialect)
			for _, mode := range []struct {
				name string
				ctx  context.Context
			}{{"fenced", fenced}, {"unfenced", unfenced}} {
				b.Run(mode.name, func(b *testing.B) {
					kind := "bench-upsert-" + mode.name
					i := 0
					for b.Loop() {
						r := res(kind, fmt.Sprintf("k%04d", i%1000), map[string]string{"app": "a"}, `{"ip":"10.0.0.1","port":20880}`)
						if _, err := s.Upsert(mode.ctx, r); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		})
	}
}

// BenchmarkReplace measures a full relist of n resources in which a tenth
// changed, a twentieth is new and a twentieth is gone: the steady state of
// a resync. The first, all-adding Replace is outside the timer.
func BenchmarkReplace(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s, fenced, _ := benchStore(b, dialect)
			for _, n := range []int{1000, 10_000} {
				b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
					kind := fmt.Sprintf("bench-replace-%d", n)
					gen := 0
					items := func() []store.Resource {
						gen++
						out := make([]store.Resource, n)
						for i := range out {
							key, spec := fmt.Sprintf("instance-%06d", i), `{"ip":"10.0.0.1","port":20880}`
							if i%10 == 0 {
								spec = fmt.Sprintf(`{"ip":"10.0.0.1","port":20880,"gen":%d}`, gen)
							}
							if i%20 == 1 {
								key = fmt.Sprintf("instance-g%d-%06d", gen, i)
							}
							out[i] = res(kind, key, map[string]string{"app": fmt.Sprintf("app-%d", i%50)}, spec)
						}
						return out
					}
					if _, err := s.Replace(fenced, kind, items()); err != nil {
						b.Fatal(err)
					}
					for b.Loop() {
						b.StopTimer()
						next := items()
						b.StartTimer()
						if _, err := s.Replace(fenced, kind, next); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// BenchmarkReplaceFromEmpty measures the first relist: n adds.
func BenchmarkReplaceFromEmpty(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s, fenced, _ := benchStore(b, dialect)
			for _, n := range []int{1000, 10_000} {
				b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
					items := make([]store.Resource, n)
					round := 0
					for b.Loop() {
						b.StopTimer()
						round++
						kind := fmt.Sprintf("bench-empty-%d-%d", n, round)
						for i := range items {
							items[i] = res(kind, fmt.Sprintf("instance-%06d", i), map[string]string{"app": "a"}, `{"ip":"10.0.0.1","port":20880}`)
						}
						b.StartTimer()
						if _, err := s.Replace(fenced, kind, items); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// BenchmarkApply measures one batched Apply of 200 instance changes, as the
// source loop sends them under churn (each op re-registers 200 of 10 000
// keys with a new spec), fenced and unfenced: the fence's cost per batch,
// apart from the stream bench's scheduling noise.
func BenchmarkApply(b *testing.B) {
	const batch, keys = 200, 10_000
	for _, dialect := range dbtest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s, fenced, unfenced := benchStore(b, dialect)
			for _, mode := range []struct {
				name string
				ctx  context.Context
			}{{"fenced", fenced}, {"unfenced", unfenced}} {
				b.Run(mode.name, func(b *testing.B) {
					kind := "bench-apply-" + mode.name
					changes := make([]store.Change, batch)
					i := 0
					for b.Loop() {
						for j := range changes {
							k := (i*batch + j) % keys
							changes[j] = store.Change{Type: store.Upserted, Resource: res(kind, fmt.Sprintf("k%05d", k),
								map[string]string{"app": "a"}, fmt.Sprintf(`{"ip":"10.0.0.1","port":20880,"ts":%d}`, i))}
						}
						if _, err := s.Apply(mode.ctx, changes); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		})
	}
}
