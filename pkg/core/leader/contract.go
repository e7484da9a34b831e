package leader

import (
	"context"
	"time"
)

// Elector is the election contract: what the runtime consumes, and what
// every backend (the SQL lease here; Kubernetes Leases and etcd in
// subpackages) implements. A backend only chooses the leader; the term it
// hands out is minted by Epochs in the store's database, so every write is
// fenced the same way whoever elected its writer.
type Elector interface {
	// Prepare is called once before the first Campaign: it creates tables,
	// connects, checks credentials. An error means the election cannot run
	// (the runtime fails closed).
	Prepare(ctx context.Context) error
	// Campaign blocks until this candidate leads or ctx ends, with the first
	// attempt at once. The Leadership's Term was minted before Campaign
	// returned, and its Context carries it (WithTerm).
	Campaign(ctx context.Context) (Leadership, error)
	// Observed is the leader as last seen, without I/O.
	Observed() Record
	// Leader reads the current leader from the backend.
	Leader(ctx context.Context) (Record, error)
	// Identity is this candidate's holder name.
	Identity() string
}

// Leadership is one term won by Campaign.
type Leadership interface {
	// Term is the fencing token of the term.
	Term() Term
	// Context is cancelled, with a cause, the moment this replica can no
	// longer be sure it leads. It is derived from Campaign's context.
	Context() context.Context
	// Done is closed when the backend's goroutines of this term returned.
	Done() <-chan struct{}
	// Resign ends the term and frees the election so that a follower can
	// take over at once. It honours ctx, is idempotent, and a term already
	// lost is not an error.
	Resign(ctx context.Context) error
	// LastRenewal is the local instant the last successful acquire or renew
	// of this term was sent.
	LastRenewal() time.Time
	// ValidUntil is the local (monotonic) instant before which no other
	// candidate can win, with the backend's margin for clock-rate skew. It
	// moves forward with every renewal; the runtime fail-stops a leader
	// component that is still running at this instant after the term ended.
	ValidUntil() time.Time
}

// ForceReleaser is implemented by backends whose election an operator can
// clear whoever holds it (`leader release --force`). It returns the leader
// as it was before.
type ForceReleaser interface {
	ForceRelease(ctx context.Context) (Record, error)
}
