package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// lockCounter counts the statements one elector's session lock runs on its
// own connection (leader.LockObserver); the lease's own statements are
// counted by the GORM callbacks of the statement rows.
type lockCounter struct{ n atomic.Int64 }

func (c *lockCounter) ObserveRenew(time.Duration, error) {}
func (c *lockCounter) ObserveLockStatement()             { c.n.Add(1) }

// lockCost runs 3 electors with timings tm (fast failover on) on a fresh
// database of dialect and counts, over window once one leads, the
// statements of the leader's session lock and the mean of the followers'.
func (b *bench) lockCost(ctx context.Context, dialect string, tm leader.Config, name string, window time.Duration) error {
	db, drop, err := b.provision(ctx, dialect)
	if err != nil {
		return err
	}
	defer drop()
	const n = 3
	counts := make([]lockCounter, n)
	electors := make([]*leader.LeaseElector, n)
	for i := range electors {
		pool, err := database.Open(ctx, db.Config)
		if err != nil {
			return err
		}
		defer database.Close(pool)
		epochs, err := leader.NewEpochs(pool)
		if err != nil {
			return err
		}
		if electors[i], err = leader.NewLeaseElector(pool, epochs, tm, leader.WithObserver(&counts[i])); err != nil {
			return err
		}
		if err := electors[i].Prepare(ctx); err != nil {
			return err
		}
	}
	// Each elector campaigns again whenever its term ends, so that a term
	// lost on a loaded machine is visible (terms) instead of leaving the
	// first leader's slot idle for the whole window.
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var leading atomic.Int64 // index of the current leader + 1; 0 when none
	var terms atomic.Int64   // terms won so far
	for i, e := range electors {
		wg.Go(func() {
			for cctx.Err() == nil {
				l, err := e.Campaign(cctx)
				if err != nil {
					return
				}
				terms.Add(1)
				leading.Store(int64(i) + 1)
				<-l.Context().Done()
				leading.CompareAndSwap(int64(i)+1, 0)
				rctx, rcancel := context.WithTimeout(context.Background(), tm.OpTimeout)
				_ = l.Resign(rctx)
				rcancel()
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	deadline := time.Now().Add(3*tm.LeaseDuration + 10*time.Second)
	for leading.Load() == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("lock cost: no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * tm.RetryPeriod)
	li, t0 := leading.Load()-1, terms.Load()
	before := make([]int64, n)
	for i := range counts {
		before[i] = counts[i].n.Load()
	}
	time.Sleep(window)
	if li2, t1 := leading.Load()-1, terms.Load(); li2 != li || t1 != t0 {
		return fmt.Errorf("lock cost: leadership changed during the %s window (%d new terms): the counts would mix roles", window, t1-t0)
	}
	var lead, follow float64
	for i := range counts {
		rate := float64(counts[i].n.Load()-before[i]) / window.Seconds()
		if int64(i) == li {
			lead = rate
		} else {
			follow += rate / (n - 1)
		}
	}
	text := fmt.Sprintf("%.2f / %.2f", lead, follow)
	if dialect == database.SQLite {
		text += " (flock: no statements; a waiting follower retries a non-blocking flock every 2ms)"
	}
	b.set(rowLockCost+name, dialect, text)
	return nil
}
