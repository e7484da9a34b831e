// Package etcd is the etcd backend of leader.Elector: etcd's election
// recipe elects the leader, and the store's database mints its term
// (leader.Epochs), so every store write is fenced the same way as under the
// SQL lease (see package leader, "Safety argument").
//
// # Pieces
//
//   - Config (config.go): endpoints, key prefix, session TTL, op timeout,
//     TLS files, username and password (never printed), validated with
//     errors that name the field.
//   - Elector (elector.go): Prepare, Campaign (the recipe), Leader,
//     ForceRelease, Observed.
//   - term (term.go): the Leadership of one won election: its keep-alives,
//     its watch of the leader key, Resign.
//
// # The recipe
//
// Each campaign grants a lease of TTL and, in one transaction, creates the
// key Prefix/<name>/<lease id in hex> with this candidate's identity as the
// value, bound to the lease (concurrency.Election's layout, with <name>
// path-escaped so that election "a" never sees the keys of "a/b"). The
// candidate whose key has the lowest create revision leads; every other one
// watches the next older key and re-checks when it is deleted: followers
// wait on a watch, not by polling, and take over as soon as etcd deletes the
// leader's key (Resign, ForceRelease, or the lease's expiry). While queued,
// a concurrency.Session keeps the lease alive. Leader lists the keys in
// create order: the leader, then every candidate in queue order.
//
// The recipe's wait is written out here rather than calling
// concurrency.Election.Campaign, whose clean-up after a cancelled campaign
// resigns on the client's context and so blocks for as long as etcd is
// unreachable; here every request is bounded by the caller's context and
// OpTimeout.
//
// Once its key is the oldest, the winner sends one keep-alive of its lease,
// then mints the term with Epochs.Mint(name, identity, "etcd revision N"),
// N being the key's create revision, etcd's own fencing token, which
// Leader reports as Record.Token.
//
// # The term's states
//
//	Queued --oldest key, keep-alive ok, term minted--> Leading
//	Leading --keep-alive ok--> Leading
//	Leading --renew deadline passed / lease gone / key deleted / session ended / Resign / ctx done--> over
//
// A leader sends a keep-alive every TTL/6, each bounded by
// min(OpTimeout, time left before the deadline). Its term context is
// cancelled (leader.ErrDeadlinePassed) 2/3 TTL after the send instant of the
// last keep-alive etcd acknowledged; at once (leader.ErrLeaseLost) when etcd
// answers that the lease is gone, when the watch of its own key reports the
// deletion or fails, or when the session ends; with leader.ErrResigned on
// Resign. A term that ends by itself revokes the lease (bounded by
// OpTimeout), so that, once etcd is reachable, the next candidate leads at
// once; a term ended by the campaign's context leaves the lease to expire,
// as a crash would, and Resign revokes it later.
//
// # Safety argument
//
// etcd expires a lease TTL after the last keep-alive it received, measured
// on the etcd leader's clock (a new etcd leader extends every lease by a
// full TTL, which only lengthens it). The leader's deadline is measured on
// its own monotonic clock from the instant it *sent* that keep-alive, which
// is before etcd received it: sent + 2/3 TTL. So as long as the two clocks'
// rates differ by less than 1/3, the leader's term context is cancelled
// before its lease can expire, hence before its key can be deleted by
// expiry, hence before any other candidate's key can be the oldest.
// ValidUntil is sent + 5/6 TTL: half the margin is kept for the rate skew.
// The other ways a key goes (Resign, ForceRelease, a revoked lease) are
// seen through the leader's watch and keep-alive answers, which can arrive
// after a successor won: that is the one window this backend cannot close
// by itself, exactly as the SQL lease's force release. The fence closes it:
// a successor's term is minted in the store's database, and from that
// commit on every fenced write of the older term fails (leader.Fence), so a
// write of an old term can never land after a newer term's first write.
// No wall clock of one machine is compared with another's.
//
// What this does not guarantee by itself: a leader paused (GC, SIGSTOP, a
// VM freeze) after it checked its context can act after its term ended.
// As under the SQL lease, the Term is for that: its writes are fenced.
//
// The package logs one line per transition (elected, lost, resigned,
// force-released) and one per change of the cause of failing campaign
// attempts, never at steady state. The etcd client's own logging is off.
package etcd
