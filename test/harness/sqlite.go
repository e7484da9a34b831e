package harness

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
)

// KillMidTransaction kills replica i with SIGKILL while it holds SQLite's
// write lock, that is, in the middle of a write transaction (a fenced store
// write or a lease statement). It freezes the replica with SIGSTOP, checks
// twice, a few milliseconds apart, that the lock is held (a BEGIN IMMEDIATE
// with no busy timeout fails), and kills it if so; otherwise it lets the
// replica go on and tries again a few milliseconds later, until ctx ends.
// It returns how many freezes it took. The database must be SQLite.
func (p *Processes) KillMidTransaction(ctx context.Context, i int) (attempts int, err error) {
	if p.cfg.Database.Dialect() != database.SQLite {
		return 0, fmt.Errorf("harness: KillMidTransaction needs sqlite, not %s", p.cfg.Database.Dialect())
	}
	probe, err := database.Open(ctx, database.Config{Driver: database.SQLite, DSN: p.cfg.Database.Config.DSN + "?_pragma=busy_timeout(0)", MaxOpenConns: 1})
	if err != nil {
		return 0, fmt.Errorf("harness: open lock probe: %w", err)
	}
	defer database.Close(probe)
	t := time.NewTicker(3 * time.Millisecond)
	defer t.Stop()
	for attempts = 1; ; attempts++ {
		if err := p.Stop(i); err != nil {
			return attempts, err
		}
		held, err := writeLocked(ctx, probe)
		if err == nil && held {
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			held, err = writeLocked(ctx, probe)
		}
		if err != nil {
			return attempts, errors.Join(err, p.Cont(i))
		}
		if held {
			return attempts, p.Kill(i)
		}
		if err := p.Cont(i); err != nil {
			return attempts, err
		}
		select {
		case <-ctx.Done():
			return attempts, fmt.Errorf("harness: replica %d never caught in a transaction: %w", i, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// writeLocked reports whether another connection holds SQLite's write lock.
func writeLocked(ctx context.Context, db *gorm.DB) (bool, error) {
	tx := db.WithContext(ctx).Begin() // BEGIN IMMEDIATE: takes the write lock or fails at once
	if err := tx.Error; err != nil {
		if strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked") {
			return true, nil
		}
		return false, fmt.Errorf("harness: probe the write lock: %w", err)
	}
	if err := tx.Rollback().Error; err != nil {
		return false, fmt.Errorf("harness: probe the write lock: %w", err)
	}
	return false, nil
}

// IntegrityCheck runs SQLite's PRAGMA integrity_check through the observer.
func (p *Processes) IntegrityCheck(ctx context.Context) (string, error) {
	var out string
	if err := p.observer.WithContext(ctx).Raw("PRAGMA integrity_check").Scan(&out).Error; err != nil {
		return "", fmt.Errorf("harness: integrity check: %w", err)
	}
	return out, nil
}
