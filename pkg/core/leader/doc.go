// Package leader elects one holder per election name through a lease row in
// Admin's own database, and hands the winner a fencing token.
//
// # Pieces
//
//   - Config (config.go): the timings and their validation.
//   - Lease (lease.go, dialect.go): the SQL backend. Table leader_leases has
//     one row per election: name, holder, term, acquired_at, renewed_at,
//     expires_at, transitions. Times are integer milliseconds of the
//     database's clock, computed inside each statement.
//   - Elector (elector.go): the campaign loop and, per term, the renew loop.
//   - Term (term.go): the fencing token, carried by the term context.
//   - Fence (fence.go): the check a write transaction makes against the row.
//
// # The lease
//
// Acquire, renew, release and force-release are each one transaction that
// locks the row (SELECT ... FOR UPDATE; SQLite runs every transaction as
// BEGIN IMMEDIATE), reads the database clock, decides and updates the row by
// primary key. Acquire takes the row when it is free, expired by the
// database clock, or already this holder's, and always increments term:
// terms strictly increase per election, also when a holder re-takes its own
// lease. Renew and release are conditional on holder and term. A missing row
// is created with an idempotent insert (INSERT OR IGNORE, INSERT IGNORE, ON
// CONFLICT DO NOTHING), so two first contenders cannot both create it.
//
// # The elector's states
//
//	Follower --acquire ok--> Leader --renew ok--> Leader
//	Follower <--deadline passed / lease lost / Resign / ctx done-- Leader
//
// A follower tries at once, then every RetryPeriod plus up to JitterFactor of
// jitter, or when the lease it observed expires if that is sooner. A leader
// renews every RetryPeriod. Each statement runs under a timeout no longer
// than min(OpTimeout, time left before the deadline); errors before the
// deadline are retried.
//
// # Safety argument
//
// The leader's deadline is measured on its own monotonic clock from the
// moment it sent its last successful acquire or renew: sent + RenewDeadline.
// The database computed that statement's expiry as (its now) + LeaseDuration,
// and its now was at or after the send. So, as long as the two clocks' rates
// differ by less than (LeaseDuration-RenewDeadline)/LeaseDuration (30% with
// the defaults), the leader's term context is cancelled before any other
// holder can acquire. No wall clock of one machine is ever compared with
// another's, so wall-clock skew and jumps do not matter.
//
// What this does not guarantee by itself: a leader that is paused (GC,
// SIGSTOP, a VM freeze) after checking its context can still act after its
// term ended. That is what the Term is for: every write to shared state is
// fenced (see Fence) inside its transaction against the row, under a shared
// lock that orders it against the next acquisition, so a write of an old
// term can never land after a newer term began.
//
// The package does not log at steady state: one line per transition
// (acquired, lost, released, renewed late) with holder and term.
package leader
