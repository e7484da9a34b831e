package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"gorm.io/gorm"
)

// Epochs mints and ends fencing terms in table leader_epochs of the store's
// database: one row per election name holding the latest term, its holder
// and the electing backend's own token. It is the single source of term
// numbers whichever backend elected the holder, and what Fence checks.
//
// Terms never decrease per election: Mint takes the next number above the
// row's, above the floor its caller passes (the SQL lease passes its own
// row's term), above every term this process has seen, and above the
// Floor option (the store's highest stamped term, asked only when the row is
// new). A deleted row or dropped table therefore cannot send terms back, and
// Migrate recreates the table.
//
// Epochs is safe for concurrent use.
type Epochs struct {
	db    *gorm.DB
	d     dialect
	floor Floor

	mu      sync.Mutex
	highest map[string]int64 // per election: the highest term seen by this process
}

// Floor returns, inside tx, a number that the next term of election must
// exceed (for example the highest term stamped on the store's rows).
type Floor func(tx *gorm.DB, election string) (int64, error)

// EpochOption configures Epochs.
type EpochOption func(*Epochs)

// WithFloor adds f to the floors Mint respects.
func WithFloor(f Floor) EpochOption { return func(e *Epochs) { e.floor = f } }

const epochColumns = `name, term, holder, token, minted_at`

// NewEpochs returns the epochs of db. It does no I/O; call Migrate first.
func NewEpochs(db *gorm.DB, opts ...EpochOption) (*Epochs, error) {
	if db == nil {
		return nil, errors.New("leader: epochs: nil *gorm.DB")
	}
	d, err := dialectOf(db)
	if err != nil {
		return nil, err
	}
	e := &Epochs{db: db, d: d, highest: map[string]int64{}}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Migrate creates tables leader_epochs and leader_terms (the term log, see
// History) if they do not exist. Several
// replicas may run it at once (see Lease.Migrate for the retry).
func (e *Epochs) Migrate(ctx context.Context) error {
	if err := e.migrateTerms(ctx); err != nil {
		return err
	}
	return migrate(ctx, e.db, "leader_epochs", e.d.createTable("leader_epochs", `
	name VARCHAR(128) NOT NULL PRIMARY KEY,
	term BIGINT NOT NULL DEFAULT 0,
	holder VARCHAR(255) NOT NULL DEFAULT '',
	token VARCHAR(255) NOT NULL DEFAULT '',
	minted_at BIGINT NOT NULL DEFAULT 0
`))
}

type epochRow struct {
	Name     string
	Term     int64
	Holder   string
	Token    string
	MintedAt int64
	NowMs    int64
}

func (r epochRow) term() Term {
	return Term{Election: r.Name, Holder: r.Holder, Number: r.Term, AcquiredAt: fromMillis(r.MintedAt)}
}

// Mint makes the next term of election for holder in its own transaction.
// token is the electing backend's own record of the win (an etcd revision,
// a Lease's resource version), kept beside the term for operators.
func (e *Epochs) Mint(ctx context.Context, election, holder, token string) (Term, error) {
	var t Term
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		t, err = e.MintTx(tx, election, holder, token, 0)
		return err
	})
	if err != nil {
		return Term{}, err
	}
	return t, nil
}

// MintTx mints inside the caller's transaction, so that the SQL lease takes
// its row and the term atomically. The term exceeds floor too. The row
// stays locked until tx ends: a fenced write of the previous term either
// committed before, or fails after.
func (e *Epochs) MintTx(tx *gorm.DB, election, holder, token string, floor int64) (Term, error) {
	if err := ValidateName(election); err != nil {
		return Term{}, err
	}
	if err := validateHolder(holder); err != nil {
		return Term{}, err
	}
	r, err := e.lockRow(tx, election)
	if err != nil {
		return Term{}, fmt.Errorf("mint term of %q: %w", election, err)
	}
	next := max(r.Term, floor, e.seen(election))
	if r.Term == 0 && e.floor != nil {
		// The row is new (first term, or deleted): only then is it worth
		// asking the store, which may have to scan.
		f, err := e.floor(tx, election)
		if err != nil {
			return Term{}, fmt.Errorf("mint term of %q: read floor: %w", election, err)
		}
		next = max(next, f)
	}
	next++
	if err := tx.Exec(`UPDATE leader_epochs SET term = ?, holder = ?, token = ?, minted_at = ? WHERE name = ?`,
		next, holder, token, r.NowMs, election).Error; err != nil {
		return Term{}, fmt.Errorf("mint term of %q: %w", election, err)
	}
	t := Term{Election: election, Holder: holder, Number: next, AcquiredAt: fromMillis(r.NowMs)}
	if err := e.logMint(tx, t, token, r.NowMs); err != nil {
		return Term{}, fmt.Errorf("mint term of %q: log it: %w", election, err)
	}
	e.see(election, next)
	return t, nil
}

// End marks t as over in the store: from its commit on, fenced writes of t
// fail. The term log records how it ended: WithEndReason on ctx, else
// EndReleased. A term that is no longer the epoch's is left alone.
func (e *Epochs) End(ctx context.Context, t Term) error {
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return e.EndTx(tx, t) })
}

// EndTx is End inside the caller's transaction (its context carries the
// end reason).
func (e *Epochs) EndTx(tx *gorm.DB, t Term) error {
	res := tx.Exec(`UPDATE leader_epochs SET holder = '' WHERE name = ? AND term = ? AND holder = ?`, t.Election, t.Number, t.Holder)
	if res.Error == nil && res.RowsAffected > 0 {
		res.Error = e.logEnd(tx, t, endReason(tx.Statement.Context))
	}
	if res.Error != nil {
		return fmt.Errorf("end term %d of %q: %w", t.Number, t.Election, res.Error)
	}
	return nil
}

// Current reads the latest term of election (holder empty once it ended);
// a zero Term when none was ever minted.
func (e *Epochs) Current(ctx context.Context, election string) (Term, error) {
	return e.current(e.db.WithContext(ctx), election)
}

func (e *Epochs) current(db *gorm.DB, election string) (Term, error) {
	var r epochRow
	res := db.Raw(e.d.selectRow("leader_epochs", epochColumns, ""), election).Scan(&r)
	if res.Error != nil {
		return Term{}, fmt.Errorf("read term of %q: %w", election, res.Error)
	}
	if res.RowsAffected == 0 {
		return Term{}, nil
	}
	e.see(election, r.Term)
	return r.term(), nil
}

// lockRow reads the epoch row under an exclusive lock, creating it first
// when it is missing.
func (e *Epochs) lockRow(tx *gorm.DB, election string) (epochRow, error) {
	var r epochRow
	q := e.d.selectRow("leader_epochs", epochColumns, e.d.forUpdate)
	res := tx.Raw(q, election).Scan(&r)
	if res.Error == nil && res.RowsAffected == 0 {
		if err := tx.Exec(e.d.insertIgnore("leader_epochs", epochColumns, `?, 0, '', '', 0`), election).Error; err != nil {
			return r, err
		}
		res = tx.Raw(q, election).Scan(&r)
		if res.Error == nil && res.RowsAffected == 0 {
			return r, errors.New("epoch row vanished while it was being created")
		}
	}
	return r, res.Error
}

func (e *Epochs) seen(election string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.highest[election]
}

func (e *Epochs) see(election string, term int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.highest[election] = max(e.highest[election], term)
}

// migrate runs one CREATE TABLE IF NOT EXISTS, retried: PostgreSQL's is not
// atomic, and two concurrent creators can both pass the existence check and
// one then fails on the catalog's unique index; the retry finds the table.
func migrate(ctx context.Context, db *gorm.DB, table, ddl string) error {
	var err error
	for range 3 {
		if err = db.WithContext(ctx).Exec(ddl).Error; err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("create table %s on %s: %w", table, db.Dialector.Name(), err)
	}
	return nil
}
