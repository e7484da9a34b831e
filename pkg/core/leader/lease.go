package leader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Errors of the lease backend. Callers test them with errors.Is.
var (
	// ErrNotHolder: the lease row no longer names this holder and term.
	ErrNotHolder = errors.New("lease is not held by this holder and term")
	// ErrHeld: another holder owns the lease and it has not expired.
	ErrHeld = errors.New("lease is held by another holder")
)

// Lease is the SQL backend of the election: one row per election name in
// table leader_leases. Every method is one transaction that reads the
// database clock and the row under a row lock, decides, and writes by primary
// key; it returns the row as written together with the database's clock.
// Lease keeps no state and is safe for concurrent use.
type Lease struct {
	db     *gorm.DB
	d      dialect
	epochs *Epochs
}

// NewLease returns the backend for db, minting its terms with the epochs of
// the same database (acquisition and minting are one transaction), built
// with opts. It does not touch the database; call Migrate before the first
// acquire.
func NewLease(db *gorm.DB, opts ...EpochOption) (*Lease, error) {
	epochs, err := NewEpochs(db, opts...)
	if err != nil {
		return nil, err
	}
	return newLease(db, epochs)
}

func newLease(db *gorm.DB, epochs *Epochs) (*Lease, error) {
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	if epochs == nil || epochs.db != db {
		return nil, errors.New("leader: the lease needs the epochs of its own database")
	}
	return &Lease{db: db, d: d, epochs: epochs}, nil
}

// DB returns the database the lease lives in.
func (l *Lease) DB() *gorm.DB { return l.db }

// Migrate creates tables leader_leases and leader_epochs if they do not
// exist. Several replicas may run it at once. The elector runs it again
// after a failed attempt, so that dropped tables come back by themselves.
func (l *Lease) Migrate(ctx context.Context) error {
	if err := migrate(ctx, l.db, "leader_leases", l.d.createTable("leader_leases", `
	name VARCHAR(128) NOT NULL PRIMARY KEY,
	holder VARCHAR(255) NOT NULL DEFAULT '',
	term BIGINT NOT NULL DEFAULT 0,
	acquired_at BIGINT NOT NULL DEFAULT 0,
	renewed_at BIGINT NOT NULL DEFAULT 0,
	expires_at BIGINT NOT NULL DEFAULT 0,
	transitions BIGINT NOT NULL DEFAULT 0,
	`+lockColumnsDDL+`
`)); err != nil {
		return err
	}
	if err := l.migrateLockColumns(ctx); err != nil {
		return err
	}
	return l.epochs.Migrate(ctx)
}

// Epochs returns the epochs the lease mints its terms with.
func (l *Lease) Epochs() *Epochs { return l.epochs }

const leaseColumns = `name, holder, term, acquired_at, renewed_at, expires_at, transitions, ` + lockColumns

// Get reads the lease of election without locking. A lease that was never
// taken reads as a free record.
func (l *Lease) Get(ctx context.Context, election string) (Record, error) {
	var r row
	res := l.db.WithContext(ctx).Raw(l.d.selectRow("leader_leases", leaseColumns, ""), election).Scan(&r)
	if res.Error != nil {
		return Record{}, fmt.Errorf("read lease %q: %w", election, res.Error)
	}
	if res.RowsAffected == 0 {
		if err := l.db.WithContext(ctx).Raw(l.d.selectNow()).Scan(&r.NowMs).Error; err != nil {
			return Record{}, fmt.Errorf("read database clock: %w", err)
		}
		r.Name = election
	}
	return r.record(), nil
}

// TryAcquire takes the lease of election for holder when it is free, expired
// by the database clock, or already holder's, and mints the term in the
// same transaction (Epochs.MintTx): terms strictly increase on every
// acquisition, whatever happened to the lease row. It returns ErrHeld, with the current record, when
// another holder owns it.
func (l *Lease) TryAcquire(ctx context.Context, election, holder string, ttl time.Duration) (Record, error) {
	if err := ValidateName(election); err != nil {
		return Record{}, err
	}
	if err := validateHolder(holder); err != nil {
		return Record{}, err
	}
	return l.acquire(ctx, election, holder, ttl, acquisition{})
}

func (l *Lease) acquire(ctx context.Context, election, holder string, ttl time.Duration, acq acquisition) (Record, error) {
	rec, err := l.acquireTx(ctx, election, holder, ttl, acq)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		// First use of this election: create the free row without racing
		// another creator, then take it like any other free row.
		if err := l.db.WithContext(ctx).Exec(l.d.insertIgnore("leader_leases", leaseColumns, `?, '', 0, 0, 0, 0, 0, '', '', 0, ''`), election).Error; err != nil {
			return Record{}, fmt.Errorf("create lease %q: %w", election, err)
		}
		rec, err = l.acquireTx(ctx, election, holder, ttl, acq)
	}
	return rec, err
}

func (l *Lease) acquireTx(ctx context.Context, election, holder string, ttl time.Duration, acq acquisition) (Record, error) {
	var out row
	err := l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := l.lockRow(tx, election)
		if err != nil {
			return err
		}
		out = r
		if r.Holder != "" && r.Holder != holder && r.ExpiresAt > r.NowMs && !acq.mayTakeOver(r) {
			return ErrHeld
		}
		if r.Holder != holder {
			out.Transitions++
		}
		t, err := l.epochs.MintTx(tx, election, holder, "", r.Term)
		if err != nil {
			return err
		}
		out.Holder = holder
		out.Term = t.Number
		out.AcquiredAt, out.RenewedAt, out.ExpiresAt = r.NowMs, r.NowMs, r.NowMs+ttl.Milliseconds()
		out.LockServer, out.LockSession, out.LockWindow, out.LockNote = acq.lock.Server, acq.lock.Session, acq.window.Milliseconds(), acq.note
		return tx.Exec(`UPDATE leader_leases SET term = ?, holder = ?, acquired_at = ?, renewed_at = ?, expires_at = ?, transitions = ?, `+
			`lock_server = ?, lock_session = ?, lock_window = ?, lock_note = ? WHERE name = ?`,
			out.Term, out.Holder, out.AcquiredAt, out.RenewedAt, out.ExpiresAt, out.Transitions,
			out.LockServer, out.LockSession, out.LockWindow, out.LockNote, election).Error
	})
	if err != nil {
		if errors.Is(err, ErrHeld) {
			return out.record(), fmt.Errorf("acquire lease %q: %w (holder %s, term %d)", election, err, out.Holder, out.Term)
		}
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("acquire lease %q: %w", election, err)
	}
	return out.record(), nil
}

// Renew extends the lease of term by ttl from the database's now, in one
// statement: a conditional UPDATE on name, holder and term, which returns
// the database's now (RETURNING; on MySQL through LAST_INSERT_ID(expr),
// which the server reports back without another statement). The record
// holds what that statement knows: holder, term, renewed, expires and now.
//
// With maxAdvance > 0 the update also requires that the database clock
// moved on by at most maxAdvance since the row's last renewal; when it
// moved further, Renew fails with ErrClockJump (and reads the row once to
// tell that apart from a lost lease). It fails with ErrNotHolder when the
// row names another holder or term.
func (l *Lease) Renew(ctx context.Context, t Term, ttl, maxAdvance time.Duration) (Record, error) {
	now := l.d.nowMillis
	set := `renewed_at = ` + now + `, expires_at = ` + now + ` + ?`
	if l.d.name == "mysql" {
		// Assignments run left to right on the updated row.
		set = `renewed_at = LAST_INSERT_ID(` + now + `), expires_at = renewed_at + ?`
	}
	q := `UPDATE leader_leases SET ` + set + ` WHERE name = ? AND holder = ? AND term = ? AND (? <= 0 OR ` + now + ` - renewed_at <= ?)`
	args := []any{ttl.Milliseconds(), t.Election, t.Holder, t.Number, maxAdvance.Milliseconds(), maxAdvance.Milliseconds()}
	r := row{Name: t.Election, Holder: t.Holder, Term: t.Number}
	var matched int64
	if l.d.name == "mysql" {
		res := gorm.WithResult()
		exec := l.db.WithContext(ctx).Clauses(res).Exec(q, args...)
		if exec.Error != nil {
			return Record{}, fmt.Errorf("renew lease %q term %d: %w", t.Election, t.Number, exec.Error)
		}
		matched = exec.RowsAffected // clientFoundRows: rows matched
		if matched > 0 {
			id, err := res.Result.LastInsertId()
			if err != nil {
				return Record{}, fmt.Errorf("renew lease %q term %d: read the database clock: %w", t.Election, t.Number, err)
			}
			r.NowMs = id
		}
	} else {
		var out struct{ RenewedAt int64 }
		scan := l.db.WithContext(ctx).Raw(q+` RETURNING renewed_at`, args...).Scan(&out)
		if scan.Error != nil {
			return Record{}, fmt.Errorf("renew lease %q term %d: %w", t.Election, t.Number, scan.Error)
		}
		matched, r.NowMs = scan.RowsAffected, out.RenewedAt
	}
	if matched > 0 {
		r.RenewedAt, r.ExpiresAt = r.NowMs, r.NowMs+ttl.Milliseconds()
		return r.record(), nil
	}
	cur, err := l.Get(ctx, t.Election)
	switch {
	case err != nil:
		return Record{}, fmt.Errorf("renew lease %q term %d: %w", t.Election, t.Number, err)
	case cur.Holder != t.Holder || cur.Term != t.Number:
		return cur, fmt.Errorf("renew lease %q term %d: %w (row has holder %q, term %d)", t.Election, t.Number, ErrNotHolder, cur.Holder, cur.Term)
	}
	return cur, fmt.Errorf("renew lease %q term %d: %w: the database clock moved %v since the last renewal, more than %v",
		t.Election, t.Number, ErrClockJump, cur.Now.Sub(cur.RenewedAt), maxAdvance)
}

// Release frees the lease of term at once and ends the term in the epoch
// (its fenced writes fail from now on). It fails with ErrNotHolder when the
// lease was already lost.
func (l *Lease) Release(ctx context.Context, t Term) (Record, error) {
	return l.update(ctx, t, "release", func(tx *gorm.DB, r *row) error {
		r.Holder, r.RenewedAt, r.ExpiresAt = "", r.NowMs, r.NowMs
		return l.epochs.EndTx(tx, t)
	})
}

// ForceRelease frees the lease of election whoever holds it, for operators
// clearing a lease left by a holder that is gone. It returns the record as
// it was before. Its term ends in the epoch too, so the old holder's fenced
// writes fail from now on; if alive, it notices at its next renew.
func (l *Lease) ForceRelease(ctx context.Context, election string) (Record, error) {
	var before row
	err := l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := l.lockRow(tx, election)
		if err != nil {
			return err
		}
		before = r
		if err := tx.Exec(`UPDATE leader_leases SET holder = '', renewed_at = ?, expires_at = ? WHERE name = ?`, r.NowMs, r.NowMs, election).Error; err != nil {
			return err
		}
		cur, err := l.epochs.current(tx, election)
		if err != nil || cur.Holder == "" {
			return err
		}
		return l.epochs.EndTx(tx.WithContext(WithEndReason(ctx, EndForceReleased)), cur)
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return l.Get(ctx, election)
	}
	if err != nil {
		return Record{}, fmt.Errorf("force release lease %q: %w", election, err)
	}
	return before.record(), nil
}

func (l *Lease) update(ctx context.Context, t Term, verb string, change func(*gorm.DB, *row) error) (Record, error) {
	var out row
	err := l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := l.lockRow(tx, t.Election)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrNotHolder
		}
		if err != nil {
			return err
		}
		out = r
		if r.Holder != t.Holder || r.Term != t.Number {
			return ErrNotHolder
		}
		if err := change(tx, &out); err != nil {
			return err
		}
		return tx.Exec(`UPDATE leader_leases SET holder = ?, renewed_at = ?, expires_at = ? WHERE name = ?`,
			out.Holder, out.RenewedAt, out.ExpiresAt, t.Election).Error
	})
	if err != nil {
		if errors.Is(err, ErrNotHolder) {
			return out.record(), fmt.Errorf("%s lease %q term %d: %w (row has holder %q, term %d)", verb, t.Election, t.Number, err, out.Holder, out.Term)
		}
		return Record{}, fmt.Errorf("%s lease %q term %d: %w", verb, t.Election, t.Number, err)
	}
	return out.record(), nil
}

// lockRow reads the row and the database clock under an exclusive row lock
// that lasts until tx ends.
func (l *Lease) lockRow(tx *gorm.DB, election string) (row, error) {
	var r row
	res := tx.Raw(l.d.selectRow("leader_leases", leaseColumns, l.d.forUpdate), election).Scan(&r)
	if res.Error != nil {
		return r, res.Error
	}
	if res.RowsAffected == 0 {
		return r, gorm.ErrRecordNotFound
	}
	return r, nil
}
