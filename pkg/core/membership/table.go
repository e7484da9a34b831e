package membership

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ErrInvalid is wrapped by every error about bad input.
var ErrInvalid = errors.New("membership: invalid input")

// Limits of the table's columns; longer values are cut (Error) or refused.
const (
	MaxElectionLength = 128
	MaxIdentityLength = 255
	MaxErrorLength    = 1000
)

// Table is the admin_replicas table. Every method is one statement (List
// may need a second one to read the clock of an empty table). Table keeps
// no state and is safe for concurrent use.
type Table struct {
	db *gorm.DB
	d  dialect
}

// NewTable returns the table on db; it does not touch the database.
func NewTable(db *gorm.DB) (*Table, error) {
	d, ok := dialects[db.Dialector.Name()]
	if !ok {
		return nil, fmt.Errorf("%w: unsupported database dialect %q (want sqlite, mysql or postgres)", ErrInvalid, db.Dialector.Name())
	}
	return &Table{db: db, d: d}, nil
}

// Migrate creates the table if it does not exist. Several replicas may run
// it at once (PostgreSQL's CREATE TABLE IF NOT EXISTS can fail on a
// concurrent creator; the retry finds the table).
func (t *Table) Migrate(ctx context.Context) error {
	var err error
	for range 3 {
		if err = t.db.WithContext(ctx).Exec(t.d.createTable).Error; err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create table admin_replicas on %s: %w", t.d.name, err)
	}
	return nil
}

// Exists reports whether the table exists (no replica ever ran when not).
func (t *Table) Exists(ctx context.Context) bool {
	return t.db.WithContext(ctx).Migrator().HasTable("admin_replicas")
}

func validate(election, identity string) error {
	switch {
	case election == "" || len(election) > MaxElectionLength:
		return fmt.Errorf("%w: election %q: must be 1..%d bytes", ErrInvalid, election, MaxElectionLength)
	case identity == "" || len(identity) > MaxIdentityLength:
		return fmt.Errorf("%w: identity %q: must be 1..%d bytes", ErrInvalid, identity, MaxIdentityLength)
	}
	return nil
}

// Upsert writes m's row of election: inserted with started_at and seen_at
// at the database's now, or updated with seen_at at now (started_at kept).
func (t *Table) Upsert(ctx context.Context, election string, m Member) error {
	if err := validate(election, m.Identity); err != nil {
		return err
	}
	if len(m.Error) > MaxErrorLength {
		m.Error = m.Error[:MaxErrorLength]
	}
	err := t.db.WithContext(ctx).Exec(t.d.upsert, election, m.Identity, m.Address, m.Version, m.Host, m.PID,
		m.Role, m.Term, m.Error).Error
	if err != nil {
		return fmt.Errorf("record replica %s of %q: %w", m.Identity, election, err)
	}
	return nil
}

// Remove deletes identity's row of election; a missing row is not an error.
func (t *Table) Remove(ctx context.Context, election, identity string) error {
	err := t.db.WithContext(ctx).Exec(`DELETE FROM admin_replicas WHERE election = ? AND identity = ?`, election, identity).Error
	if err != nil {
		return fmt.Errorf("remove replica %s of %q: %w", identity, election, err)
	}
	return nil
}

// Prune deletes the rows of election not seen for longer than olderThan,
// by the database's clock, and returns how many it deleted.
func (t *Table) Prune(ctx context.Context, election string, olderThan time.Duration) (int64, error) {
	res := t.db.WithContext(ctx).Exec(`DELETE FROM admin_replicas WHERE election = ? AND seen_at < `+t.d.nowMillis+` - ?`,
		election, olderThan.Milliseconds())
	if res.Error != nil {
		return 0, fmt.Errorf("prune replicas of %q: %w", election, res.Error)
	}
	return res.RowsAffected, nil
}

// List reads every replica of election, oldest first, marking as Gone the
// ones not seen for longer than goneAfter.
func (t *Table) List(ctx context.Context, election string, goneAfter time.Duration) (View, error) {
	var rows []row
	err := t.db.WithContext(ctx).Raw(`SELECT identity, address, version, host, pid, role, term, error, started_at, seen_at, `+
		t.d.nowMillis+` AS now_ms FROM admin_replicas WHERE election = ? ORDER BY started_at, identity`, election).Scan(&rows).Error
	if err != nil {
		return View{}, fmt.Errorf("list replicas of %q: %w", election, err)
	}
	v := View{Election: election, GoneAfterMs: goneAfter.Milliseconds(), Replicas: make([]Replica, 0, len(rows))}
	var now int64
	if len(rows) > 0 {
		now = rows[0].NowMs
	} else if err := t.db.WithContext(ctx).Raw(`SELECT ` + t.d.nowMillis + ` AS now_ms`).Scan(&now).Error; err != nil {
		return View{}, fmt.Errorf("read database clock: %w", err)
	}
	v.Now = time.UnixMilli(now).UTC()
	for _, r := range rows {
		v.Replicas = append(v.Replicas, r.replica(goneAfter))
	}
	return v, nil
}
