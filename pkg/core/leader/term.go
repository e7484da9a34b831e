package leader

import (
	"context"
	"fmt"
	"time"
)

// Term is one tenure of one holder: the fencing token. Number is minted by
// Epochs in the store's database and strictly increases per election name
// with every acquisition by any backend, including a holder re-taking its
// own lease, so a write tagged with a Term can be checked against the epoch
// row (see Fence).
type Term struct {
	Election string `json:"election"`
	Holder   string `json:"holder"`
	Number   int64  `json:"number"`
	// AcquiredAt is the database's clock when the term was minted.
	AcquiredAt time.Time `json:"acquiredAt,omitzero"`
}

// IsZero reports whether t is no term at all.
func (t Term) IsZero() bool { return t.Number == 0 }

func (t Term) String() string {
	return fmt.Sprintf("%s/%s#%d", t.Election, t.Holder, t.Number)
}

type termKey struct{}

// WithTerm returns a context that carries t.
func WithTerm(ctx context.Context, t Term) context.Context {
	return context.WithValue(ctx, termKey{}, t)
}

// TermFrom returns the Term carried by ctx, if any.
func TermFrom(ctx context.Context) (Term, bool) {
	t, ok := ctx.Value(termKey{}).(Term)
	return t, ok
}
