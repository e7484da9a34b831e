package leader

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The lease row's record of the session lock: where the holder's lock lives
// (lock_server, empty for a lease-only term), which session holds it, the
// holder's lock window in milliseconds, and why a term is lease-only.
const (
	lockColumns    = `lock_server, lock_session, lock_window, lock_note`
	lockColumnsDDL = `lock_server VARCHAR(255) NOT NULL DEFAULT '',
	lock_session VARCHAR(64) NOT NULL DEFAULT '',
	lock_window BIGINT NOT NULL DEFAULT 0,
	lock_note VARCHAR(255) NOT NULL DEFAULT ''`
)

// acquisition is how a term is taken: with the session lock held (lock,
// window) or lease-only (note says why), and, for a takeover before the
// lease expired, the lock-fenced term it replaces.
type acquisition struct {
	lock     lockInfo
	window   time.Duration
	note     string
	takeover *Record
}

// mayTakeOver reports whether the row r, held and unexpired, may be taken
// anyway: it is still the term the candidate decided to replace, that term
// is lock-fenced on the server where the candidate got the lock, in
// another session than the candidate's (a shared session means a pooler
// handed both the same server session: no exclusion at all), and on the
// lock window the candidate waited for (the holder may have grown it).
func (a acquisition) mayTakeOver(r row) bool {
	t := a.takeover
	return t != nil && a.lock.Server != "" &&
		r.Holder == t.Holder && r.Term == t.Term &&
		r.LockServer == a.lock.Server && r.LockServer == t.lock.server &&
		r.LockSession == t.lock.session && r.LockSession != a.lock.Session &&
		r.LockWindow == t.lock.window.Milliseconds()
}

// takeOver takes the lease of the lock-fenced term old before it expired,
// minting the next term in the same transaction: conditional on the row
// still holding old, lock-fenced on lock's server. It fails with ErrHeld
// when the row changed.
func (l *Lease) takeOver(ctx context.Context, old Record, holder string, ttl time.Duration, lock lockInfo, window time.Duration) (Record, error) {
	return l.acquire(ctx, old.Election, holder, ttl, acquisition{lock: lock, window: window, takeover: &old})
}

// unfence turns the lock-fenced term t lease-only (note says why), so that
// no follower takes over before the lease expires. It fails with
// ErrNotHolder when the row no longer holds t.
func (l *Lease) unfence(ctx context.Context, t Term, note string) error {
	res := l.db.WithContext(ctx).Exec(`UPDATE leader_leases SET lock_server = '', lock_session = '', lock_window = 0, lock_note = ? WHERE name = ? AND holder = ? AND term = ?`,
		truncate(note, 255), t.Election, t.Holder, t.Number)
	if res.Error != nil {
		return fmt.Errorf("turn term %d of %q lease-only: %w", t.Number, t.Election, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("turn term %d of %q lease-only: %w", t.Number, t.Election, ErrNotHolder)
	}
	return nil
}

// refence makes the lease-only term t lock-fenced again, on the lock
// described by lock with window: followers that get the lock may take over
// early from then on, so the term must keep to its lock deadline before
// calling it. It fails with ErrNotHolder when the row no longer holds t.
func (l *Lease) refence(ctx context.Context, t Term, lock lockInfo, window time.Duration) error {
	res := l.db.WithContext(ctx).Exec(`UPDATE leader_leases SET lock_server = ?, lock_session = ?, lock_window = ?, lock_note = '' WHERE name = ? AND holder = ? AND term = ?`,
		lock.Server, lock.Session, window.Milliseconds(), t.Election, t.Holder, t.Number)
	if res.Error != nil {
		return fmt.Errorf("make term %d of %q lock-fenced again: %w", t.Number, t.Election, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("make term %d of %q lock-fenced again: %w", t.Number, t.Election, ErrNotHolder)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// migrateLockColumns adds the lock columns to a leader_leases table
// created before them. Several replicas may run it at once: a column added
// by another is not an error.
func (l *Lease) migrateLockColumns(ctx context.Context) error {
	probe := func() error {
		var rows []row
		return l.db.WithContext(ctx).Raw(`SELECT ` + lockColumns + ` FROM leader_leases WHERE 1 = 0`).Scan(&rows).Error
	}
	if probe() == nil {
		return nil
	}
	for _, col := range strings.Split(lockColumnsDDL, ",\n") {
		// Errors here are mostly "duplicate column" from a concurrent
		// migration; the probe below decides.
		_ = l.db.WithContext(ctx).Exec(`ALTER TABLE leader_leases ADD COLUMN ` + strings.TrimSpace(col)).Error
	}
	if err := probe(); err != nil {
		return fmt.Errorf("add the session-lock columns to leader_leases: %w", errors.Join(err, ctx.Err()))
	}
	return nil
}
