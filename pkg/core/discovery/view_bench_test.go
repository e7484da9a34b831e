package discovery

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// benchLayout is the bench's interface-level registry (test/bench, zktest):
// services × providers, ten services per application, each provider on its
// own address.
type benchLayout struct{ services, providers int }

func (l benchLayout) reg(i, j int, ts int64) store.Resource {
	n := i*l.providers + j
	iface := fmt.Sprintf("org.apache.dubbo.bench.Service%05d", i)
	ip := fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
	id := fmt.Sprintf("/dubbo/%s/providers/dubbo%%3A%%2F%%2F%s%%3A20880%%2F%s%%3Fapplication%%3Dbench-app-%05d%%26timestamp%%3D%d",
		iface, ip, iface, i/10, ts)
	res, err := NewRegistration(id, Registration{
		Application: fmt.Sprintf("bench-app-%05d", i/10), IP: ip, Port: 20880, Protocol: "dubbo",
		Interface: iface, Version: "1.0.0", Methods: []string{"sayHello", "sayGoodbye"}, Side: SideProvider,
		Timestamp: time.UnixMilli(ts).UTC(),
	})
	if err != nil {
		panic(err)
	}
	return res
}

func (l benchLayout) items(ts int64) []store.Resource {
	out := make([]store.Resource, 0, l.services*l.providers)
	for i := range l.services {
		for j := range l.providers {
			out = append(out, l.reg(i, j, ts))
		}
	}
	return out
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkViewReset derives the stored kinds of 10 000 services × 10
// providers; live-MB is what the view and its output hold afterwards
// (beyond the registrations it was given).
func BenchmarkViewReset(b *testing.B) {
	l := benchLayout{services: 10_000, providers: 10}
	items := l.items(1714550000000)
	before := liveHeap()
	var v *view
	var out map[string][]store.Resource
	for b.Loop() {
		v = newView()
		var err error
		if out, err = v.Reset(items); err != nil {
			b.Fatal(err)
		}
	}
	withOut := liveHeap()
	runtime.KeepAlive(out)
	b.ReportMetric(float64(withOut-before)/(1<<20), "live-MB")
	b.ReportMetric(float64(liveHeap()-before)/(1<<20), "view-MB")
	runtime.KeepAlive(v)
	runtime.KeepAlive(items)
}

// BenchmarkViewChurn re-registers one provider per op (its old URL
// deleted, a new one with a new timestamp registered), flushing every 20
// ops as a batch of the sync loop would at 1000 changes/s.
func BenchmarkViewChurn(b *testing.B) {
	l := benchLayout{services: 10_000, providers: 10}
	v := newView()
	if _, err := v.Reset(l.items(1714550000000)); err != nil {
		b.Fatal(err)
	}
	ts := map[[2]int]int64{}
	n := 0
	for b.Loop() {
		i, j := (n*7919)%l.services, (n/l.services)%l.providers
		p := [2]int{i, j}
		old := ts[p]
		if old == 0 {
			old = 1714550000000
		}
		ts[p] = old + 1
		v.Add(source.Delete(KindRegistration, l.reg(i, j, old).Key))
		v.Add(source.Upsert(l.reg(i, j, old+1)))
		if n++; n%20 == 0 {
			v.Flush()
		}
	}
}
