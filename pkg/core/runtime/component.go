package runtime

import "context"

// Component is a unit of work the runtime manages.
//
// Init runs on every replica, once, before any election; it must not start
// goroutines that outlive it. Start runs until ctx is cancelled and then
// returns; it must stop every goroutine, watch and informer it started before
// returning, and build them anew on its next Start. A nil or context error
// from Start after cancellation is a clean stop; any other error while ctx is
// live is a failure and the runtime restarts the component with backoff.
type Component interface {
	Name() string
	Init(ctx context.Context) error
	Start(ctx context.Context) error
}

// LeaderElectionRunnable is the optional marker of a leader-only component:
// a Component whose NeedLeaderElection returns true runs only on the leader,
// and its Start context is the term context (see leader.TermFrom). Components
// without the marker run on every replica.
type LeaderElectionRunnable interface {
	NeedLeaderElection() bool
}

// NeedsLeader reports whether c runs on the leader only.
func NeedsLeader(c Component) bool {
	r, ok := c.(LeaderElectionRunnable)
	return ok && r.NeedLeaderElection()
}

// Orderer is an optional Component method that fixes its place in the
// runtime's order. fx hands a value group over in no defined order, so the
// runtime sorts components itself: by Order ascending (components without it
// count as 0), then by Name. Init runs one component at a time in that order;
// Start launches them in that order, each on its own goroutine.
type Orderer interface {
	Order() int
}

func orderOf(c Component) int {
	if o, ok := c.(Orderer); ok {
		return o.Order()
	}
	return 0
}
