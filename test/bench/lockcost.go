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
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	won := make(chan int, n)
	terms := make([]leader.Leadership, n)
	for i, e := range electors {
		wg.Go(func() {
			if l, err := e.Campaign(cctx); err == nil {
				terms[i] = l
				won <- i
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
		for _, l := range terms {
			if l != nil {
				_ = l.Resign(context.Background())
			}
		}
	}()
	var li int
	select {
	case li = <-won:
	case <-time.After(3*tm.LeaseDuration + 10*time.Second):
		return fmt.Errorf("lock cost: no leader")
	}
	time.Sleep(2 * tm.RetryPeriod)
	before := make([]int64, n)
	for i := range counts {
		before[i] = counts[i].n.Load()
	}
	time.Sleep(window)
	var lead, follow float64
	for i := range counts {
		rate := float64(counts[i].n.Load()-before[i]) / window.Seconds()
		if i == li {
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
