// Package membership records every replica of an election, leader or
// follower, in a table of Admin's own database, so that any replica (and
// `dubbo-admin leader status`) can list them all.
//
// # The table
//
// admin_replicas has one row per replica process: election, identity (the
// replica's holder name in the election, new for every process), HTTP
// address, version, host, pid, role, the term it leads (0 if none), its last
// election error, started_at and seen_at. Times are integer milliseconds of
// the database's clock, computed inside each statement, like the lease's:
// no replica's wall clock is ever compared with another's.
//
// # What a replica writes
//
// A Recorder writes its replica's row at start (started_at = seen_at = the
// database's now), then at most one statement per Period (the election's
// RetryPeriod): it compares its replica's state with the row it last wrote
// every Period, without I/O, and writes when the state changed or when
// Keepalive (default GoneAfter/3) passed since its last write. On a graceful
// stop it deletes its row. At start it also deletes the rows of its election
// not seen for Retention (default 24h): replicas that crashed long ago.
// Every statement is a single-row upsert or delete by primary key, except
// that one prune.
//
// # What a reader sees
//
// List returns every row of an election with the database's clock. A replica
// not seen for longer than GoneAfter (the lease duration) is Gone: it
// crashed, was frozen or lost the database. A crashed replica is therefore
// listed as alive for at most GoneAfter after its last write, and never as
// alive after that unless it writes again; a restarted process has a new
// identity and a new row. A stopped replica is not listed.
//
// What this does not say: that a replica listed as alive can reach anything
// but the database, or that its role is current to better than Period. The
// lease, not this table, decides who leads; readers mark the leader from the
// lease.
package membership
