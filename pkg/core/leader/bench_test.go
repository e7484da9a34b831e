package leader_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// benchLease provisions a throwaway database for one benchmark.
func benchLease(b *testing.B, dialect string) *leader.Lease {
	b.Helper()
	l, err := leader.NewLease(dbtest.Pool(b, "pkg/core/leader benchmarks", dialect))
	if err != nil {
		b.Fatal(err)
	}
	if err := l.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkAcquire measures one acquisition of a free lease (acquire, then
// release outside the timer so every iteration finds it free).
func BenchmarkAcquire(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			l := benchLease(b, dialect)
			ctx := context.Background()
			for b.Loop() {
				rec, err := l.TryAcquire(ctx, "bench", "holder", time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := l.Release(ctx, rec.TermOf()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkRenew measures the leader's steady-state statement.
func BenchmarkRenew(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			l := benchLease(b, dialect)
			ctx := context.Background()
			rec, err := l.TryAcquire(ctx, "bench", "holder", time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := l.Renew(ctx, rec.TermOf(), time.Minute, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGet measures a follower's poll of a held lease.
func BenchmarkGet(b *testing.B) {
	for _, dialect := range dbtest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			l := benchLease(b, dialect)
			ctx := context.Background()
			if _, err := l.TryAcquire(ctx, "bench", "holder", time.Minute); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := l.Get(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
