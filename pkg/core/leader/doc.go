// Package leader is Admin's election: the contract every election backend
// implements (Elector, Leadership), the SQL lease backend on Admin's own
// database, and the fencing epoch that turns any backend's win into a term
// the store can check.
//
// # Pieces
//
//   - Elector, Leadership, ForceReleaser (contract.go): the election as the
//     runtime consumes it. Backends: LeaseElector here; Kubernetes Leases
//     and etcd in subpackages.
//   - Epochs (epoch.go): table leader_epochs, one row per election with the
//     current term, its holder and the backend's token. Every backend mints
//     its terms here; the number only ever increases.
//   - Fence (fence.go): the check every write transaction of the store
//     makes against the epoch row.
//   - The term log (terms.go): table leader_terms, one row per minted term
//     with how it ended (released, fenced, deadline, expired, ...), the last
//     HistoryLimit per election; Epochs.History reads it.
//   - Term (term.go): the fencing token, carried by the term context.
//   - Config (config.go): the timings and their validation.
//   - Lease (lease.go, dialect.go): the SQL backend. Table leader_leases has
//     one row per election: name, holder, term, acquired_at, renewed_at,
//     expires_at, transitions. Times are integer milliseconds of the
//     database's clock, computed inside each statement.
//   - LeaseElector (elector.go, trouble.go): the campaign loop and, per
//     term, the renew loop, on the lease.
//
// Follow one term: LeaseElector.Campaign -> Lease.TryAcquire, which locks the
// lease row and calls Epochs.MintTx in the same transaction -> the term
// context (WithTerm) -> runtime's leader runner hands it to the leader
// components -> the store's write transaction calls Fence first.
//
// # The epoch
//
// Mint locks the election's epoch row, takes the next number above the
// row's term, the caller's floor (the lease row's term), the highest term
// this process has seen and, when the row is new, the store's highest
// stamped term (WithFloor), and writes it with the holder. Fence reads the
// row under a shared lock that lasts until the write commits, and refuses a
// term that is not the row's, or whose holder was cleared (End: a released
// or force-released term). So a write of term T either commits before T+1
// is minted or fails with ErrFenced, whatever happened to the lease row:
// lowered, deleted, its table dropped (the elector re-creates both tables
// after a failed attempt). Renewals touch only the lease row, so no fenced
// write, however long, delays them, except on SQLite, where every write
// transaction holds the file's single write lock: there the store bounds
// its transactions instead (Replace is chunked).
//
// # The lease
//
// Acquire, renew, release and force-release are each one transaction that
// locks the row (SELECT ... FOR UPDATE; SQLite runs every transaction as
// BEGIN IMMEDIATE), reads the database clock, decides and updates the row by
// primary key. Acquire takes the row when it is free, expired by the
// database clock, or already this holder's, and always mints a new term:
// terms strictly increase per election, also when a holder re-takes its own
// lease. Renew and release are conditional on holder and term; release and
// force-release also end the term in the epoch. A missing row is created
// with an idempotent insert (INSERT OR IGNORE, INSERT IGNORE, ON CONFLICT DO
// NOTHING), so two first contenders cannot both create it.
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
// This is the SQL lease's. The other backends argue the same way, each in
// its own package doc: pkg/core/leader/kubernetes (the Lease's
// resourceVersion observed for a lease duration on the follower's own
// clock) and pkg/core/leader/etcd (the session's TTL counted from the last
// keep-alive sent). All three then rely on the same epoch for fencing.
//
// The leader's deadline is measured on its own monotonic clock from the
// moment it sent its last successful acquire or renew: sent + RenewDeadline.
// The database computed that statement's expiry as (its now) + LeaseDuration,
// and its now was at or after the send. So, as long as the two clocks' rates
// differ by less than (LeaseDuration-RenewDeadline)/LeaseDuration (30% with
// the defaults), the leader's term context is cancelled before any other
// holder can acquire. No wall clock of one machine is ever compared with
// another's, so skew and jumps of the replicas' wall clocks do not matter.
//
// Leadership.ValidUntil is sent + LeaseDuration - margin, with margin
// (LeaseDuration-RenewDeadline)/2: the runtime fail-stops a leader component
// still running then, which is before the database can expire the lease.
//
// The database's own clock is the remaining assumption: it must advance at
// about the real rate. A forward jump (an NTP step, a failover to a primary
// with another clock) would expire the lease early by the database's
// reckoning, so each renew compares how far the database clock moved since
// the previous successful statement with how far the local monotonic clock
// moved, and a leader whose database clock ran ahead by more than the margin
// steps down (ErrClockJump). A backward jump only lengthens the lease and
// is not detected. A jump smaller than the margin, or one that happens
// between two renewals of a replica that is not leading, is absorbed by the
// margin and by fencing.
//
// What this does not guarantee by itself: a leader that is paused (GC,
// SIGSTOP, a VM freeze) after checking its context can still act after its
// term ended. That is what the Term is for: every write to shared state is
// fenced (see Fence) inside its transaction against the row, under a shared
// lock that orders it against the next acquisition, so a write of an old
// term can never land after a newer term began.
//
// # The session lock (fast failover)
//
// With Config.FastFailover (on by default) a crashed leader is replaced
// about its lock window (D: Config.LockWindow, 300ms by default, larger
// while the database is slow) after the crash instead of about a lease
// duration later, and a released lease wakes a follower at once. The lease stays the authority; the lock only lets a
// follower take it early. Each candidate
// holds a connection of its own, outside GORM's pool (one per replica), to
// a session lock of the election (lock.go): MySQL/MariaDB GET_LOCK (the
// name a hash of database and election: MariaDB's names are server-wide),
// PostgreSQL pg_advisory_lock, SQLite an flock(2) on a side file next to
// the database. Followers wait on the lock between their polls of the
// lease; the server (or the kernel) frees it the moment the holder's session
// or process ends. A free lock does not mean the leader stopped: the server
// also ends sessions of live processes (KILL, pg_terminate_backend, idle
// timeouts, a failover, a partition the server times out first), so the
// rule is:
//
//   - The leader checks its lock every LockCheckPeriod (P <= D/3) on the
//     lock connection (IS_USED_LOCK(name) = CONNECTION_ID(); a granted
//     pg_locks row of pg_backend_pid(); the side file's inode), and its term
//     ends at once on any error of that connection. While its row says
//     lock-fenced it may act only while
//     less than its window D has passed, on its monotonic clock, since the
//     start of its last successful check, and while its lease is valid: the term
//     context is cancelled P/2 before that instant, and ValidUntil is at
//     most that instant, so the runtime fail-stops a component still
//     running then.
//   - The window follows the checks' round trip (window.go): a check
//     slower than D/6 doubles D, up to 8*LockWindow and at most half the
//     renew deadline. Once a hold of checks in a row were faster than
//     D/12, D comes down in one step to the smallest window that their
//     slowest fits twice over. The hold is 12 checks (about 1 s at the
//     default P) after an isolated slow check and doubles with each growth
//     that follows, up to 375 (30 s), which 375 checks in a row at
//     LockWindow forget: a scheduler's hiccup costs a crash the larger
//     window for a second, a database that stalls again and again keeps
//     the window that survives its stalls. The leader counts on a larger
//     window only once its row says so (a conditional write on its term),
//     and on a smaller one before its row does, so the row's window is
//     never smaller than the one the leader acts on. The elector starts
//     its next term on the window and hold the last one ended with.
//   - A late check is not a lost lock. When no check has succeeded for
//     1.5P (2D/5 once D grew), the leader writes its row lease-only (conditional on its term;
//     reason "lock check late"); once that committed, no follower takes
//     over before the lease expires, so the term goes on bound by its lease
//     alone, and the next check that succeeds makes it lock-fenced again:
//     the lock deadline first, then the row; a check too slow for the
//     window grows it first, so a slow database leaves the term lease-only
//     only until the window fits its checks. Only when neither a check nor
//     that write succeeded by P/2 before the lock deadline does the term
//     end (ErrLockCheckDeadline). A check that fails while the term is
//     lease-only closes the lock; the term goes on under its lease.
//   - A candidate without the lock does not re-take its own unexpired
//     lock-fenced lease (the lock's new holder may be about to take it
//     over), and leaves a free lease one retry period to the lock's holder.
//   - A term acquired while holding the lock is lock-fenced: its row records
//     the lock's server identity (host, port and server id, or address,
//     port and start time for PostgreSQL, plus the database; the side
//     file's device and inode), the lock session (connection id, backend
//     pid) and D, in milliseconds. Any other term is lease-only, with the
//     reason in the row.
//   - A follower that gets the lock may take over an unexpired lease only
//     if the row says its holder is lock-fenced on the same server identity
//     in another session, and only after waiting D*(1+10%)+5ms from the
//     moment its lock call returned, D being the window the row names (at
//     least its own LockWindow), with a conditional takeover on the old
//     term (holder, term and lock columns, window included, unchanged;
//     a grown window sends it back to wait that one) that mints the next
//     term in the same transaction, as acquisition does. Otherwise it waits
//     for the lease to expire, as without the lock.
//
// Why this is safe: the lock is exclusive on one server, so when the
// follower's lock call returns at t0 the leader's session had lost it
// before t0, and any check the leader started after the loss fails; its
// last successful check started before t0, so it stops acting before
// t0 + D by its clock, which is before t0 + D*(1+10%) by the follower's as
// long as the two monotonic clocks' rates differ by less than 10%; the D
// the leader acts on is never larger than the row's when the takeover
// commits, since it grows only after its row says so and the takeover is
// conditional on the window the follower waited for. The
// takeover, conditional on the old term, serializes with the old leader's
// renewals, and the fenced writes of the old term fail from the new term's
// mint on, whatever the timing. On SQLite the kernel frees an flock only
// when its descriptor closes, which the elector does only after Resign
// released the lease or once the term's ValidUntil passed (the runtime has
// stopped, or fail-stopped, the leader components by then), and a process
// that died cannot act: there a term has no lock window (its checks only
// confirm the side file was not replaced) and the follower takes over
// without waiting.
//
// Graceful handover: Resign releases the lease, then unlocks; a follower
// blocked on the lock wakes and takes the free lease at once. A follower that
// does not hold the lock leaves a free lease one retry period to the lock's
// holder before taking it lease-only.
//
// What breaks the lock's exclusion, and what the elector does about it:
//
//   - A pooler in transaction mode (PgBouncer) or a multiplexing proxy runs
//     each statement on any server session, and may give two clients the
//     same one (the locks are re-entrant, so both "get" it). Detected: the
//     session behind the lock connection changing between two statements
//     (at the lock, at every check), and a follower getting the lock in the
//     session the holder's row names. The term turns lease-only (the row
//     first, conditionally, before its window ends; else the term ends) and
//     fast failover stays off for the elector's life, with one warning.
//   - A database failover or a server restart frees every lock; the old
//     leader's checks fail (its session is gone), and a follower on another
//     server sees another identity and waits for the lease.
//   - Not detected: two distinct servers that report the same identity (the
//     same host name, port and server id on MySQL; the same address, port
//     and start time on PostgreSQL) behind one address; a proxy that keeps
//     a client's session pinned yet replays GET_LOCK on another server; a
//     side file on a network file system whose flock is not shared between
//     machines (SQLite is for one machine only); monotonic clocks whose
//     rates differ by more than 10%. For those, turn FastFailover off.
//
// What it costs: a leader starved of CPU, or of its database, for more than
// about half its window all at once (before the window could grow) cannot
// confirm its lock nor turn its term lease-only in time, so the term ends,
// and if its components cannot return within the P/2 left the runtime
// fail-stops the process. Seen once on 2 cores with the database, ZooKeeper
// and a second replica saturating them during a 100k-instance first sync
// while a test run compiled beside it; a larger election.lockWindow makes
// it rarer, at the cost of a slower crash failover.
//
// The package does not log at steady state: one line per transition
// (acquired, lost, released, renewed late) with holder and term. Failing
// campaign attempts are logged as errors once per change of cause (and
// once a minute while it lasts), with one line when they work again; a
// lease whose expiry lies more than twice the lease duration ahead gets one
// warning naming `dubbo-admin leader release --force`.
package leader
