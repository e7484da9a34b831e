// Package runtime runs Admin's components, the leader-only ones under one
// leader election per process.
//
// # Pieces
//
//   - Component, LeaderElectionRunnable, Orderer (component.go): the contract.
//     FuncComponent, ComponentFunc, LeaderComponentFunc (func.go): adapters.
//   - Runtime (runtime.go): Start, Stop, Status, Subscribe.
//   - The leader runner (leader_runner.go): the state machine below.
//   - restarter and Backoff (restart.go): restart of a failed Start.
//   - group (group.go): the goroutines of components started together.
//   - Status, RoleChange (status.go): the read-only view.
//   - NoElection (elector.go): the single-replica leader.Elector. The
//     runtime consumes the election contract leader.Elector / Leadership,
//     whichever backend implements it.
//   - Module, AsComponent, FxLogger (fx.go): the fx wiring.
//
// # Order
//
// fx hands the components group over in no defined order. The runtime sorts
// it by Order() (optional Orderer; 0 without it), then by Name, and names
// must be unique. Init runs in that order, one at a time; Starts are launched
// in that order, each on its own goroutine.
//
// # Start
//
// Start prepares the election (Elector.Prepare; the SQL lease creates its
// tables: if that fails, Start fails with ErrElectionSetup and nothing runs;
// there is no silent fallback to running unelected), calls every Init, starts the
// non-leader components for the runtime's life, then starts the leader
// runner and returns. The first campaign attempt is immediate.
//
// # The leader runner's states
//
//	NotStarted --Start--> Candidate
//	Candidate  --Campaign won--> Leading
//	Leading    --term context ended (deadline, lease lost, write fenced) / Stop--> Draining
//	Draining   --all returned, lost--> [reset store] --> Candidate
//	Draining   --all returned, Stop--> [release lease] --> Stopped
//	Candidate  --Stop--> Stopped
//
// Candidate: Campaign runs (Stop interrupts it). Leading: each leader
// component runs on its own goroutine with the term context, a child of the
// Leadership's context that carries the Term (leader.TermFrom); a component
// whose Start fails is started again after a capped exponential backoff
// inside the term (non-leader components are restarted the same way, for
// the runtime's life). Draining: the runner cancels the term context and
// waits for every leader component to return, bounded by DrainTimeout and,
// once the term is lost, by the Leadership's ValidUntil (the instant before
// which no other replica can be elected, as this replica last renewed):
// past the bound the fail-stop hook runs (by default: one log line, exit
// status 3), since a component that ignores cancellation would otherwise run
// beside the next leader. With the defaults (lease 10s, renew deadline 7s) a
// term lost at its deadline leaves 1.5s, so that bound, not the 5s
// DrainTimeout, is what holds. A replica that notices the loss only after
// that instant (it was paused, and a successor may already lead) gives its
// components a short grace (500ms) instead of exiting at once. A term that ended because a write was fenced
// is followed by a backoff before the next campaign, growing while terms
// keep being fenced at once. After a lost term, once the components returned and the
// elector's renew loop ended, the runner calls Resetter.Reset (retried with
// backoff until it succeeds) and only then campaigns again: no state of a
// term leaks into the next, and every Start of a component returns before
// its next Start.
//
// On Stop the runner cancels the term context itself while the elector is
// still renewing, so the lease stays valid while the components drain; it
// releases the lease (Leadership.Resign) only after they all returned, as
// the election's last step, so that a follower takes over within about one
// retry period. Then the non-leader components are cancelled and awaited.
// Stop is idempotent and works in every state.
//
// Everything above runs on the runner goroutine or the components' own
// goroutines, never on the elector's renew goroutine. Each goroutine has an
// owner that cancels it and waits for it: the runner owns the leader
// components of a term, the Runtime owns the runner and the non-leader
// components, and Stop waits for all of them.
//
// # Single replica
//
// NoElection (Options.SingleReplica in Module) leads from start to stop with
// a fixed term number 1 and no lease row. It is the only way to run without
// election, and it must not be used by two replicas at once.
//
// # Observing
//
// Status is a snapshot: role, since when, this replica's term, the leader as
// last observed, and per component its state, starts, restarts and last
// error. Subscribe delivers role changes on a channel without ever blocking
// the runner. Logs: one structured line per role change (with holder and
// term), per component failure, and nothing at steady state.
package runtime
