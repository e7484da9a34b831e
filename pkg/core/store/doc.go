// Package store keeps Admin's resources: the contract (ResourceStore), a
// memory backend for a single replica and a GORM backend shared by replicas.
//
// # Resources
//
// A Resource is a kind, a key, labels, a JSON spec, a resource version, the
// term that wrote it and the time it was written. Kind, key and spec are
// chosen by the caller; the store sets the rest on every write:
// ResourceVersion counts the writes of that (kind, key) since it was
// created (1 on creation), Term is the leader term of the write (0 for an
// unfenced one), UpdatedAt is the writer's local clock at millisecond
// resolution. UpdatedAt is informational only: nothing compares it across
// replicas, so wall-clock skew does not matter.
//
// Inputs are checked before anything is written; a bad one fails with an
// error wrapping ErrInvalid that names the field and the rule (see the Max
// constants): kind and key are non-empty valid UTF-8 without control
// characters or surrounding white space; the spec is a JSON value and is
// stored compacted; labels are bounded in number and size.
//
// # Operations
//
//   - Get, List: reads, no term needed. List returns a kind in key order
//     (byte order on every backend), keeping the resources that carry every
//     selector label, in pages of ListOptions.Limit with an opaque continue
//     token (the page's last key, base64). Pages are not a snapshot: a
//     resource written between two pages may or may not show up.
//   - Upsert, Delete: one resource, one transaction. Delete of a missing
//     resource is ErrNotFound.
//   - Replace(kind, items): makes kind hold exactly items and reports how
//     many were added, updated and deleted. Items equal to what is stored
//     (same labels and compacted spec) are not written and keep their
//     version. The memory backend does it in one step; the GORM backend
//     in chunks (see "Replace on the GORM backend" below).
//   - Subscribe: the changes this replica commits, in commit order, as
//     events. Changes written by other replicas are not delivered: readers
//     that need them read the shared rows. A subscription's channel is
//     closed when its ctx ends, when it falls DefaultEventBuffer events
//     behind (WithEventBuffer) or on Reset; a closed channel while ctx is
//     live means "re-list and subscribe again". Events share memory between
//     subscribers: treat them as read-only. The GORM backend builds a
//     write's events from its rows after the commit, and only when someone
//     subscribed.
//   - Reset: drops what this replica built during its term: it ends every
//     subscription and discards their undelivered events. It never deletes
//     shared rows; the next leader's Replace reconciles them. The GORM
//     backend keeps no other per-term state (no cache to go stale):
//     Replace reads what it compares inside its own transactions.
//
// # Write permission and fencing
//
// Every write needs a permission carried by its context:
//
//   - a leader.Term (leader.WithTerm; the term context of a leader
//     component carries one): the write is fenced;
//   - Unfenced(ctx): an explicit opt-in for tools, tests and single-replica
//     setups; the write carries term 0;
//   - neither: the write fails with ErrNoTerm and changes nothing.
//
// On the GORM backend a fenced write is one transaction whose first
// statement is leader.Fence: it reads the election's epoch row
// (leader_epochs) under a shared lock (FOR SHARE, LOCK IN SHARE MODE; SQLite
// transactions are BEGIN IMMEDIATE and hold the database's write lock) and
// checks that it still holds the term's number and holder (not ended by a
// release). Otherwise the write fails with ErrFenced (which is
// leader.ErrFenced) and the transaction rolls back: nothing of it is
// committed. The lease row is not read, so renewals never wait for a
// fenced write, and the fence is the same whichever backend elected the
// writer.
//
// The guarantee: no write of term T commits after term T+1 was minted.
// Minting takes the epoch row under an exclusive lock, so it waits for
// every transaction that passed the fence to commit or roll back, and every
// fence that runs after it sees the new term. A leader paused for any
// length of time (GC, SIGSTOP, a partition) after it last checked its
// context therefore cannot land a single write after its successor began.
// What it does not guarantee: writes of an unfenced context are not
// ordered against terms at all, and a term that is still the newest one
// may write however late its own components are, also after its lease
// expired, until a successor is minted (such a write is still ordered
// before everything of the successor).
//
// The memory backend has no lease: a Term-carrying context is accepted and
// its number stamped on the resources, unchecked. Memory is for one replica
// only; Shared reports false so that the application refuses to start
// several replicas on it.
//
// # The GORM backend
//
// Table resources lives in the same database as leader_leases (see
// gorm_sql.go for the columns). Migrate creates it with hand-written
// CREATE TABLE IF NOT EXISTS per dialect, safe to run from several replicas
// at once (PostgreSQL takes an advisory lock first); GORM's AutoMigrate is
// not used because concurrent runs race. Keys use a byte-order collation on
// every dialect (BINARY, utf8mb4_bin, COLLATE "C").
//
// Labels are stored as a JSON text column, and label selection is done in
// Go on a kind-scoped scan in key order: it is correct and identical on all
// three dialects, with no JSON functions and no second table to keep in
// step, at the cost of reading a kind's rows to select among them (Admin's
// kinds hold thousands of resources, not millions).
//
// Writes are batched statements: deletes, inserts, and updates as
// multi-row upserts, each of at most the batch size (DefaultBatchSize rows,
// or DefaultSQLiteBatchSize on SQLite; WithBatchSize) and about 4 MiB,
// which keeps every statement far below the bind variable limits (SQLite
// 32766, PostgreSQL 65535) and MySQL's max_allowed_packet.
//
// # Replace on the GORM backend
//
// One transaction for a whole registry would hold the fence's shared lock,
// and on SQLite the database's only write lock, for as long as it runs (a
// million rows take tens of seconds), and everything that waits for either
// (the leader's renew, a successor's acquisition, every other write on
// SQLite) would wait as long. So Replace writes in chunks, each its own
// fenced transaction of at most a chunk's rows (DefaultReplaceChunkRows)
// that commits at the end of the first batch past its time budget
// (DefaultReplaceChunkTime; WithReplaceChunk). On SQLite it leaves the
// write lock free for a moment between chunks, as SQLite's busy handler
// polls instead of queueing.
//
// Replace first validates every item (a bad one fails the call before
// anything is written) and sorts their indexes by key; it keeps no second
// copy of the items: each chunk normalizes its own again. Then:
//
//  1. Adds and updates, in key order: each batch of source items is
//     compared with its rows' (key, version, digest), read under row locks
//     (FOR UPDATE; SQLite already holds the write lock), where digest is a
//     SHA-256 of the stored labels and spec; only the differences are
//     written.
//  2. Deletes, after every add and update committed: the kind's keys are
//     scanned in key order, outside any transaction, and those the source
//     does not hold are deleted in key order, in chunks, each batch read
//     under row locks first (the events carry the old rows).
//
// When the source and the stored kind each fit in one chunk, both steps
// run in one transaction: a small Replace is atomic, as before.
//
// What readers see while a chunked Replace runs: every committed chunk, so
// a mix, never a snapshot. During step 1 the kind holds the old resources
// with a prefix of the source's keys (in key order) already added or
// updated; no resource that the source also holds is ever missing, and
// nothing outside old ∪ source appears. Once step 1 is done the kind is
// old ∪ source, with the source's content for every key the source holds;
// step 2 then removes the vanished keys, lowest first. Deletes come last so
// that a resource that moved to a new key is never absent from both.
// After Replace returns without error, the kind equals the source. If a
// chunk fails (ErrFenced after the term was lost, a cancelled ctx, a
// database error), the chunks before it stay committed, their counts are
// returned with the error, and the kind is somewhere in the sequence above;
// the next Replace (the next leader's) completes it. Subscribers get each
// chunk's events once it commits, all adds and updates before any delete.
//
// Other writes of the same replica may run between two chunks (a write
// waits for at most one chunk): they are ordered per key, not against the
// Replace as a whole. A key written that way stays if its chunk already
// went by, and is overwritten or deleted if it did not.
//
// Writes of one GORM store are serialised inside the process (one write
// transaction at a time per replica), which is what gives subscribers
// commit order. WithTxHook runs a function inside every write transaction,
// after the fence; tests use it to keep a database-ordered write log.
//
// On SQLite, waiting for the write lock is a sleep-and-retry busy handler,
// not a queue: a process that writes without pause can keep other
// connections (another replica's lease statements) waiting up to the busy
// timeout.
package store
