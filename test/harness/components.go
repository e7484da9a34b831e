package harness

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// ProbeKind is the kind the Probe writes; it is not part of the Source.
const ProbeKind = "HarnessProbe"

// Probe is a leader component that upserts one resource through the store's
// fenced path every Interval for as long as its term lasts, so that every
// term writes continuously and a write of an old term would show in the
// WriteLog. Errors (a paused connection, a fenced write) are counted and
// the loop goes on until the term context ends.
type Probe struct {
	Replica  string
	Store    store.ResourceStore
	Interval time.Duration

	writes, fenced, failed atomic.Int64
}

// ProbeStats counts a Probe's writes over its life.
type ProbeStats struct {
	Writes, Fenced, Failed int64
}

var (
	_ runtime.Component              = (*Probe)(nil)
	_ runtime.LeaderElectionRunnable = (*Probe)(nil)
)

// Name implements runtime.Component.
func (p *Probe) Name() string { return "harness-probe" }

// Init implements runtime.Component.
func (p *Probe) Init(context.Context) error { return nil }

// NeedLeaderElection is true: the probe runs on the leader only.
func (p *Probe) NeedLeaderElection() bool { return true }

// Start writes until ctx ends.
func (p *Probe) Start(ctx context.Context) error {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	term, _ := leader.TermFrom(ctx)
	for n := 0; ; n++ {
		spec, _ := json.Marshal(map[string]any{"replica": p.Replica, "term": term.Number, "n": n})
		_, err := p.Store.Upsert(ctx, store.Resource{Kind: ProbeKind, Key: "probe", Spec: spec})
		switch {
		case err == nil:
			p.writes.Add(1)
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, store.ErrFenced):
			p.fenced.Add(1)
		default:
			p.failed.Add(1)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Stats returns the probe's counters.
func (p *Probe) Stats() ProbeStats {
	return ProbeStats{Writes: p.writes.Load(), Fenced: p.fenced.Load(), Failed: p.failed.Load()}
}

// recorded wraps a leader component so that every Start records its
// interval, with the term it ran for, in a Timeline.
type recorded struct {
	runtime.Component
	replica  string
	timeline *Timeline
}

func (r *recorded) NeedLeaderElection() bool { return runtime.NeedsLeader(r.Component) }

func (r *recorded) Start(ctx context.Context) error {
	term, _ := leader.TermFrom(ctx)
	stop := r.timeline.Begin(Interval{Replica: r.replica, Component: r.Name(), Term: term.Number, Holder: term.Holder, Start: time.Now()})
	defer func() { stop(time.Now()) }()
	return r.Component.Start(ctx)
}
