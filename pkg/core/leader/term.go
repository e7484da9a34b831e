package leader

import (
	"context"
	"fmt"
	"time"
)

// Term is one tenure of one holder: the fencing token. Number strictly
// increases per election name with every acquisition, including a holder
// re-taking its own lease, so a write tagged with a Term can be checked
// against the lease row (see Fence).
type Term struct {
	Election string
	Holder   string
	Number   int64
	// AcquiredAt is the database's clock when the term began.
	AcquiredAt time.Time
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
