package kubernetes_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
)

// benchTimings are the ones client-go's elector was measured with on this
// machine (lease 3 s, renew 2 s, retry 500 ms: crash takeover 2.5-4.0 s,
// graceful handover 0.26-0.95 s), for comparison.
func benchTimings(name string) klease.Config {
	return klease.Config{
		Election: leader.Config{Name: name, LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second,
			RetryPeriod: 500 * time.Millisecond, JitterFactor: 0.2, OpTimeout: 500 * time.Millisecond},
		Namespace: "bench",
		LeaseName: name,
	}
}

// benchPair is two replicas of one election on a fresh apiserver.
func benchPair(b *testing.B, name string) (a, f *klease.Elector) {
	b.Helper()
	s := kubeapiserver.Testing(b, suite+" benchmarks")
	db := dbtest.Pool(b, suite+" benchmarks", database.SQLite)
	ctx := context.Background()
	newOne := func() *klease.Elector {
		client, closeIdle, err := kubeapiserver.NewClient(s.Config())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(closeIdle)
		epochs, err := leader.NewEpochs(db)
		if err != nil {
			b.Fatal(err)
		}
		e, err := klease.New(client, epochs, benchTimings(name))
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Prepare(ctx); err != nil {
			b.Fatal(err)
		}
		return e
	}
	a = newOne()
	admin, closeIdle, err := kubeapiserver.NewClient(s.Config())
	if err != nil {
		b.Fatal(err)
	}
	defer closeIdle()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	return a, newOne()
}

// takeover runs one round: a leads, f campaigns; end (a resign or a crash)
// is timed until f's Campaign returns. Both step down afterwards.
func takeover(b *testing.B, a, f *klease.Elector, end func(l leader.Leadership, crash context.CancelFunc)) time.Duration {
	b.Helper()
	ctx := context.Background()
	actx, crash := context.WithCancel(ctx)
	defer crash()
	la, err := a.Campaign(actx)
	if err != nil {
		b.Fatal(err)
	}
	won := make(chan leader.Leadership, 1)
	go func() {
		l, err := f.Campaign(ctx)
		if err != nil {
			b.Error(err)
		}
		won <- l
	}()
	// Let the follower observe the leader before the leader goes.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for f.Observed().Holder != a.Identity() {
		<-tick.C
	}
	start := time.Now()
	end(la, crash)
	lf := <-won
	took := time.Since(start)
	if lf == nil {
		b.FailNow()
	}
	<-la.Done()
	_ = la.Resign(ctx)
	if err := lf.Resign(ctx); err != nil {
		b.Fatal(err)
	}
	return took
}

func benchTakeover(b *testing.B, name string, end func(l leader.Leadership, crash context.CancelFunc)) {
	a, f := benchPair(b, name)
	var worst time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		took := takeover(b, a, f, func(l leader.Leadership, crash context.CancelFunc) { b.StartTimer(); end(l, crash) })
		b.StopTimer()
		worst = max(worst, took)
		a, f = f, a
	}
	b.ReportMetric(float64(worst.Milliseconds()), "max-ms")
}

// BenchmarkHandover is a graceful stop: the leader resigns (releases the
// Lease) and the follower takes it at its next poll.
func BenchmarkHandover(b *testing.B) {
	benchTakeover(b, "handover", func(l leader.Leadership, _ context.CancelFunc) {
		if err := l.Resign(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkCrashFailover is a crash: the leader stops renewing and releases
// nothing; the follower takes the Lease once it has stayed unchanged for a
// lease duration.
func BenchmarkCrashFailover(b *testing.B) {
	benchTakeover(b, "crash", func(_ leader.Leadership, crash context.CancelFunc) { crash() })
}
