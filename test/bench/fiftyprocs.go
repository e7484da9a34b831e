package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
)

// fiftyProcesses measures n replica processes of the built binary on one
// database at the default timings (fast failover on), as a large
// deployment runs them: every statement they send together per second
// (the server's own count), the server connections they hold, each
// replica's resident memory, and crash failover rounds.
func (b *bench) fiftyProcesses(ctx context.Context, dialect string, n, rounds int, window time.Duration) error {
	tm := defaultTimings()
	// Each replica holds its pool's connections and a session-lock
	// connection: more than the server's default of 151 for 50 replicas.
	restore, err := raiseMaxConnections(ctx, b, dialect, 8*n)
	if err != nil {
		return err
	}
	defer restore()
	p, stop, err := b.cluster(ctx, dialect, n, tm, "fifty-processes")
	if err != nil {
		return err
	}
	defer stop()
	sctx, cancel := context.WithTimeout(ctx, 3*tm.LeaseDuration+time.Minute)
	li, _, err := settled(sctx, p)
	cancel()
	if err != nil {
		return err
	}
	// Every replica's membership row written and its first keepalives done.
	time.Sleep(4 * tm.RetryPeriod)

	db := p.Observer()
	q0, at0, err := globalStatus(ctx, db, "Questions")
	if err != nil {
		return err
	}
	time.Sleep(window)
	q1, at1, err := globalStatus(ctx, db, "Questions")
	if err != nil {
		return err
	}
	conns, _, err := globalStatus(ctx, db, "Threads_connected")
	if err != nil {
		return err
	}
	// The observer's own statement: the second read counts itself.
	total := float64(q1-q0-1) / at1.Sub(at0).Seconds()
	b.set(rowFiftyProcStmts, dialect, fmt.Sprintf("%.1f statements/s in all, %.2f per replica; %d server connections",
		total, total/float64(n), conns))

	var lead, sum, most int64
	for i := range n {
		v, err := rss(p.Process(i).PID())
		if err != nil {
			return err
		}
		if i == li {
			lead = v
			continue
		}
		sum += v
		most = max(most, v)
	}
	b.set(rowFiftyProcRSS, dialect, fmt.Sprintf("leader %s; followers mean %s, max %s", mib(lead), mib(sum/int64(n-1)), mib(most)))

	crash, err := failoverRounds(ctx, p, rounds, tm, false)
	if err != nil {
		return fmt.Errorf("crash failover of %d processes, after %d rounds: %w", n, len(crash.took), err)
	}
	b.set(rowFiftyProcCrash, dialect, p50p99max(crash.took))
	b.noteSlowCrashes("50 replica processes on "+dialectName(dialect), crash, 3*tm.LockWindow/2)
	return nil
}

// globalStatus reads one of MariaDB's global status counters, and when.
func globalStatus(ctx context.Context, db *gorm.DB, name string) (int64, time.Time, error) {
	var v string
	at := time.Now()
	if err := db.WithContext(ctx).Raw("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = ?", name).Scan(&v).Error; err != nil {
		return 0, at, fmt.Errorf("read %s: %w", name, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, at, fmt.Errorf("read %s: %q: %w", name, v, err)
	}
	return n, at, nil
}

// raiseMaxConnections raises the server's max_connections to at least n
// for the measurement; restore sets it back.
func raiseMaxConnections(ctx context.Context, b *bench, dialect string, n int) (restore func(), err error) {
	db, drop, err := b.provision(ctx, dialect)
	if err != nil {
		return nil, err
	}
	admin, err := database.Open(ctx, db.Config)
	if err != nil {
		drop()
		return nil, err
	}
	drop2 := func() { _ = database.Close(admin); drop() }
	var old int
	if err := admin.WithContext(ctx).Raw("SELECT @@GLOBAL.max_connections").Scan(&old).Error; err != nil {
		drop2()
		return nil, fmt.Errorf("read max_connections: %w", err)
	}
	if old >= n {
		return drop2, nil
	}
	if err := admin.WithContext(ctx).Exec("SET GLOBAL max_connections = ?", n).Error; err != nil {
		drop2()
		return nil, fmt.Errorf("raise max_connections to %d: %w", n, err)
	}
	b.note("MariaDB: max_connections raised from %d to %d for the %d-process cluster, and set back after it.", old, n, b.fiftyN)
	return func() {
		_ = admin.Exec("SET GLOBAL max_connections = ?", old).Error
		drop2()
	}, nil
}
