package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

type unfencedKey struct{}

// Unfenced returns a context that permits writes without a leader term:
// for tools, tests and single-replica setups that own the store outright.
// A Term carried by the same context still wins: such a write is fenced.
func Unfenced(ctx context.Context) context.Context {
	return context.WithValue(ctx, unfencedKey{}, true)
}

func isUnfenced(ctx context.Context) bool {
	v, _ := ctx.Value(unfencedKey{}).(bool)
	return v
}

// authority is what a write context allows: a fenced write of term, or an
// unfenced write (term zero).
type authority struct {
	term   leader.Term
	fenced bool
}

// termNumber is the number stamped on the rows the write touches.
func (a authority) termNumber() int64 {
	if a.fenced {
		return a.term.Number
	}
	return 0
}

// authorize reads the write permission carried by ctx: a non-zero Term
// (fenced), else Unfenced, else ErrNoTerm.
func authorize(ctx context.Context) (authority, error) {
	if t, ok := leader.TermFrom(ctx); ok && !t.IsZero() {
		return authority{term: t, fenced: true}, nil
	}
	if isUnfenced(ctx) {
		return authority{}, nil
	}
	return authority{}, ErrNoTerm
}

// HighestTerm is the highest term stamped on any resource row, read inside
// tx: a floor for the election's next term (leader.WithFloor), so that a
// lost epoch row cannot send terms below what the store already holds. A
// missing resources table reads as 0.
func HighestTerm(tx *gorm.DB) (int64, error) {
	if !tx.Migrator().HasTable("resources") {
		return 0, nil
	}
	var n int64
	if err := tx.Raw(`SELECT COALESCE(MAX(term), 0) FROM resources`).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("read highest term of the store: %w", err)
	}
	return n, nil
}

// fence is the first statement of every GORM write transaction: for a
// fenced write it checks the term against the election's epoch row under a
// shared lock that lasts until tx ends (leader.Fence), so the write commits
// before the next term is minted, or not at all. Whichever backend elected
// the writer, the epoch row is the authority.
func (a authority) fence(tx *gorm.DB) error {
	if !a.fenced {
		return nil
	}
	return leader.Fence(tx, a.term)
}
