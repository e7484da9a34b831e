package leader

import (
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// ErrFenced: a write tagged with a term was refused because that term is no
// longer the live lease. Nothing of the write was committed.
var ErrFenced = errors.New("write fenced: term is no longer the live lease")

// Fence checks, inside tx, that the lease row still names t's holder and term
// and has not expired by the database clock. It holds a shared lock on the
// row until tx ends, so an acquisition of the next term waits for tx to
// commit or roll back: a write that passed the fence is ordered before the
// next term begins. Call it first in the write transaction and roll back on
// error.
func Fence(tx *gorm.DB, t Term) error {
	d, err := dialectOf(tx)
	if err != nil {
		return err
	}
	var r row
	res := tx.Raw(d.selectRow(d.forShare), t.Election).Scan(&r)
	if res.Error != nil {
		return fmt.Errorf("check fence for term %d of %q: %w", t.Number, t.Election, res.Error)
	}
	switch {
	case res.RowsAffected == 0:
		return fmt.Errorf("%w: lease %q does not exist (term %d)", ErrFenced, t.Election, t.Number)
	case r.Holder != t.Holder || r.Term != t.Number:
		return fmt.Errorf("%w: lease %q is term %d of %q, not term %d of %q", ErrFenced, t.Election, r.Term, r.Holder, t.Number, t.Holder)
	case r.ExpiresAt <= r.NowMs:
		return fmt.Errorf("%w: lease %q term %d expired %dms ago by the database clock", ErrFenced, t.Election, t.Number, r.NowMs-r.ExpiresAt)
	}
	return nil
}
