package leader

import (
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// ErrFenced: a write tagged with a term was refused because that term is no
// longer the store's current one. Nothing of the write was committed.
var ErrFenced = errors.New("write fenced: term is no longer current")

// Fence checks, inside tx, that t is the current term of its election in
// table leader_epochs (same number, same holder, not ended). It holds a
// shared lock on the epoch row until tx ends, so minting the next term waits
// for tx to commit or roll back: a write that passed the fence is ordered
// before the next term begins. The lease row is not touched, so renewals
// never wait for fenced writes, however long. Call it first in the write
// transaction and roll back on error.
func Fence(tx *gorm.DB, t Term) error {
	d, err := dialectOf(tx)
	if err != nil {
		return err
	}
	var r epochRow
	res := tx.Raw(d.selectRow("leader_epochs", epochColumns, d.forShare), t.Election).Scan(&r)
	switch {
	case isMissingTable(res.Error):
		return fmt.Errorf("%w: table leader_epochs is missing (term %d of %q)", ErrFenced, t.Number, t.Election)
	case res.Error != nil:
		return fmt.Errorf("check fence for term %d of %q: %w", t.Number, t.Election, res.Error)
	case res.RowsAffected == 0:
		return fmt.Errorf("%w: election %q has no term (write of term %d)", ErrFenced, t.Election, t.Number)
	case r.Term != t.Number:
		return fmt.Errorf("%w: election %q is at term %d of %q, not term %d of %q", ErrFenced, t.Election, r.Term, r.Holder, t.Number, t.Holder)
	case r.Holder != t.Holder:
		return fmt.Errorf("%w: term %d of %q has ended", ErrFenced, t.Number, t.Election)
	}
	return nil
}
