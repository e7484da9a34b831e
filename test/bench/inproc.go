package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/test/harness"
)

// counters counts the GORM statements of each in-process replica.
type counters []atomic.Int64

// hook registers, on a replica's pool, a callback at the end of each of
// GORM's statement processors (Create, Query, Update, Delete, Row, Raw):
// every statement GORM runs for the replica counts once. BEGIN and COMMIT
// are not GORM statements and are not counted.
func (c counters) hook() harness.PoolHook {
	return func(i int, db *gorm.DB) error {
		n := &c[i]
		count := func(*gorm.DB) { n.Add(1) }
		cb := db.Callback()
		return errors.Join(
			cb.Create().Register("bench:count", count),
			cb.Query().Register("bench:count", count),
			cb.Update().Register("bench:count", count),
			cb.Delete().Register("bench:count", count),
			cb.Row().Register("bench:count", count),
			cb.Raw().Register("bench:count", count),
		)
	}
}

func (c counters) snapshot() []int64 {
	out := make([]int64, len(c))
	for i := range c {
		out[i] = c[i].Load()
	}
	return out
}

// inProcess starts n in-process replicas with statement counters on a
// fresh database of dialect. The probe writes once per term (its interval
// is an hour), so that the steady state is the election's and the idle
// Engine's. The returned stop closes the cluster and drops the database.
func (b *bench) inProcess(ctx context.Context, dialect string, n int, tm leader.Config, name string) (*harness.InProcess, counters, func(), error) {
	db, drop, err := b.provision(ctx, dialect)
	if err != nil {
		return nil, nil, nil, err
	}
	src, err := harness.NewSource(filepath.Join(b.tmp, dialect+"-"+name, "source"))
	if err == nil {
		err = src.Put("instances.yaml", harness.Instances("bench", "app", 20)...)
	}
	if err != nil {
		drop()
		return nil, nil, nil, err
	}
	cnt := make(counters, n)
	c, err := harness.StartInProcess(ctx, n, harness.InProcessConfig{
		Database: db, Source: src, Leader: tm, ProbeInterval: time.Hour, PoolHook: cnt.hook(),
	})
	if err != nil {
		drop()
		return nil, nil, nil, err
	}
	return c, cnt, func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.Close(cctx)
		drop()
	}, nil
}

// inSettled waits until one replica leads with its leader components
// running and every other running replica is a Candidate.
func inSettled(ctx context.Context, c *harness.InProcess) (int, int64, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		li, term, candidates, running := -1, int64(0), 0, 0
		for i := range c.N() {
			r := c.Replica(i)
			if !r.Running() {
				continue
			}
			running++
			st := r.Status()
			if _, ok := runningSince(st); ok {
				li, term = i, st.Term.Number
			} else if st.Role == runtime.RoleCandidate {
				candidates++
			}
		}
		if li >= 0 && candidates == running-1 {
			return li, term, nil
		}
		select {
		case <-ctx.Done():
			return -1, 0, fmt.Errorf("in-process cluster never settled: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// statementRates measures statements per second over window: the
// leader's, and the followers' (mean and highest). The leader must not
// change during the window.
func statementRates(ctx context.Context, c *harness.InProcess, cnt counters, window time.Duration) (lead float64, followMean, followMax float64, err error) {
	li, term, err := inSettled(ctx, c)
	if err != nil {
		return 0, 0, 0, err
	}
	before, t0 := cnt.snapshot(), time.Now()
	select {
	case <-ctx.Done():
		return 0, 0, 0, ctx.Err()
	case <-time.After(window):
	}
	after, over := cnt.snapshot(), time.Since(t0)
	if st := c.Replica(li).Status(); st.Role != runtime.RoleLeading || st.Term.Number != term {
		return 0, 0, 0, errors.New("the leader changed during the window")
	}
	var sum int64
	followers := 0
	for i := range after {
		d := after[i] - before[i]
		if i == li {
			lead = rate(d, over)
			continue
		}
		sum += d
		followers++
		followMax = max(followMax, rate(d, over))
	}
	return lead, rate(sum, over) / float64(followers), followMax, nil
}

// statementRows measures the statement rates of 3 in-process replicas.
func (b *bench) statementRows(ctx context.Context, dialect string, tm leader.Config, name string, window time.Duration) error {
	c, cnt, stop, err := b.inProcess(ctx, dialect, 3, tm, "stmts-"+name)
	if err != nil {
		return err
	}
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, window+3*tm.LeaseDuration+30*time.Second)
	defer cancel()
	// Let the first term's start-up writes (the Engine's Replace, the
	// probe's one write) pass before counting.
	if _, _, err := inSettled(sctx, c); err != nil {
		return err
	}
	time.Sleep(2 * tm.RetryPeriod)
	lead, mean, _, err := statementRates(sctx, c, cnt, window)
	if err != nil {
		return err
	}
	b.set(rowStmts+name, dialect, fmt.Sprintf("%.2f / %.2f", lead, mean))
	return nil
}

// fifty runs the 50-replica cluster on one database: statement rates, then
// rounds of simulated crashes of the leader.
func (b *bench) fifty(ctx context.Context, dialect string, n, rounds int, window time.Duration) error {
	tm := harness.FastTimings()
	start := time.Now()
	c, cnt, stop, err := b.inProcess(ctx, dialect, n, tm, "fifty")
	if err != nil {
		return err
	}
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, _, err := inSettled(sctx, c); err != nil {
		return err
	}
	b.note("%d in-process replicas on %s started and settled in %s.", n, dialectName(dialect), short(time.Since(start)))
	time.Sleep(2 * tm.RetryPeriod)
	lead, mean, maxF, err := statementRates(sctx, c, cnt, window)
	if err != nil {
		return err
	}
	b.set(rowFiftyStmts, dialect, fmt.Sprintf("%.1f total; leader %.2f, follower %.2f (max %.2f)", lead+mean*float64(n-1), lead, mean, maxF))

	lease, err := leader.NewLease(c.Observer())
	if err != nil {
		return err
	}
	var out, after durations
	crashErrs := 0
	for range rounds {
		rctx, cancel := context.WithTimeout(ctx, 3*tm.LeaseDuration+30*time.Second)
		li, term, err := inSettled(rctx, c)
		if err != nil {
			cancel()
			return err
		}
		time.Sleep(rand.N(2 * tm.RetryPeriod)) // a random phase, as in failoverRounds
		t0 := time.Now()
		if err := c.SimulateCrash(rctx, li); err != nil {
			crashErrs++
		}
		expiry, _ := expiresAt(rctx, lease, term)
		at, _, err := inTakeover(rctx, c, li, term)
		if err == nil {
			out = append(out, at.Sub(t0))
			if !expiry.IsZero() {
				after = append(after, at.Sub(expiry))
			}
			err = c.Start(rctx, li)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("crash round %d: %w", len(out)+1, err)
		}
	}
	if crashErrs > 0 {
		b.note("%d of %d simulated crashes returned an error from stopping the crashed runtime.", crashErrs, rounds)
	}
	if tm.FastFailover {
		after = nil // taken over through the session lock, before the lease expired
	}
	b.set(rowFiftyCrash, dialect, withExpiry(out, after))
	return nil
}

// inTakeover is takeover for in-process replicas.
func inTakeover(ctx context.Context, c *harness.InProcess, old int, oldTerm int64) (running, leading time.Time, err error) {
	return pollTakeover(ctx, c.N(), old, oldTerm, func(i int) (runtime.Status, bool) {
		r := c.Replica(i)
		if !r.Running() {
			return runtime.Status{}, false
		}
		return r.Status(), true
	})
}
