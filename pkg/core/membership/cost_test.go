package membership_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/membership"
)

// CostEnv turns TestCost on: it is a measurement, not a check, and takes
// about 2 x 3 dialects x ADMIN_MEMBERSHIP_COST seconds (default 20).
const CostEnv = "ADMIN_MEMBERSHIP_COST"

// TestCost measures the statements per second the Recorder sends per
// replica, with 3 and 50 replicas on each dialect, at the default election
// timings (retry period 1s, lease 10s: keepalive 3.3s), steady (no state
// change) and churning (a new term at every period), and prints a Markdown
// table for BENCHMARKS.md. Run it with scripts/bench.sh, or:
//
//	ADMIN_MEMBERSHIP_COST=20 go test -run TestCost -v ./pkg/core/membership
func TestCost(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv(CostEnv))
	if secs <= 0 {
		t.Skip("a measurement: set " + CostEnv + "=<seconds per run> to run it")
	}
	window := time.Duration(secs) * time.Second
	lc := leader.DefaultConfig()
	cfg := membership.Config{Election: "cost", Period: lc.RetryPeriod, GoneAfter: lc.LeaseDuration, OpTimeout: lc.OpTimeout}
	fmt.Printf("| database | replicas | state | statements/s per replica | statements/s in all | rows |\n|---|---|---|---|---|---|\n")
	for _, dialect := range dbtest.Dialects {
		ctx := context.Background()
		tdb, reason, err := dbtest.Provision(ctx, dialect)
		if err != nil {
			t.Fatal(err)
		}
		if reason != "" {
			fmt.Printf("| %s | - | skipped: %s | | | |\n", dialect, reason)
			continue
		}
		for _, n := range []int{3, 50} {
			for _, churn := range []bool{false, true} {
				perReplica, all, rows := costRun(t, tdb, cfg, n, churn, window)
				state := "steady"
				if churn {
					state = "a change every period"
				}
				fmt.Printf("| %s | %d | %s | %.3f | %.2f | %d |\n", dialect, n, state, perReplica, all, rows)
			}
		}
		if err := tdb.Drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// costRun runs n recorders, each on a pool of its own as a replica
// process would, for window, and counts their statements from the third
// period on (past every first write and prune). rows is how many replicas
// a reader lists at the end.
func costRun(t *testing.T, tdb *dbtest.DB, cfg membership.Config, n int, churn bool, window time.Duration) (perReplica, all float64, rows int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg      sync.WaitGroup
		counted atomic.Int64
		on      atomic.Bool
	)
	count := func(*gorm.DB) {
		if on.Load() {
			counted.Add(1)
		}
	}
	var reader *membership.Table
	for i := range n {
		db, err := tdb.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer database.Close(db)
		for _, err := range []error{
			db.Callback().Raw().After("gorm:raw").Register("cost:count", count),
			db.Callback().Query().After("gorm:query").Register("cost:count", count),
			db.Callback().Row().After("gorm:row").Register("cost:count", count),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		table, err := membership.NewTable(db)
		if err != nil {
			t.Fatal(err)
		}
		if err := table.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if reader == nil {
			reader = table
		}
		var term int64
		self := func() membership.Member {
			if churn {
				term++
			}
			return membership.Member{Identity: fmt.Sprintf("cost-%d-%t-%d", n, churn, i), Address: "127.0.0.1:8080", Role: "Candidate", Term: term}
		}
		rec, err := membership.NewRecorder(table, cfg, self, logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = rec.Run(ctx) }()
	}
	time.Sleep(3 * cfg.Period)
	on.Store(true)
	time.Sleep(window)
	on.Store(false)
	if view, err := reader.List(ctx, cfg.Election, cfg.GoneAfter); err == nil {
		rows = view.Alive()
	}
	cancel()
	wg.Wait()
	all = float64(counted.Load()) / window.Seconds()
	return all / float64(n), all, rows
}
