package leader

import "time"

// Record is a lease row as the database saw it, with the database's clock at
// the moment of the statement. All times come from the database: compare
// them with Now, never with a local clock.
type Record struct {
	Election    string
	Holder      string // empty when the lease is free
	Term        int64
	AcquiredAt  time.Time
	RenewedAt   time.Time
	ExpiresAt   time.Time
	Transitions int64 // times the lease changed hands
	Now         time.Time
	// Backend names the election backend that produced the record: "sql",
	// "kubernetes", "etcd" or "none".
	Backend string
	// Token is the backend's own fencing token for the term (an etcd
	// revision, a Lease's resource version); empty for the SQL lease, whose
	// term is the token.
	Token string
	// Candidates lists every candidate in queue order, where the backend
	// knows them (etcd); nil otherwise.
	Candidates []string
	// Path is the failover path of the term (SQL lease): PathLockFenced
	// when its holder holds the session lock and a follower may take over
	// as soon as the lock is free, PathLeaseOnly when a successor waits for
	// the lease to expire; "" when no term was ever taken or the backend
	// has no such notion.
	Path string
	// PathReason says why a term is lease-only ("fast failover is off",
	// "lock lost: ...").
	PathReason string
	// LockWindow is the lock window of a lock-fenced term as its row says:
	// a follower that got the session lock waits that long (plus drift)
	// before it takes over; 0 on SQLite, whose file lock only the holder's
	// close or death frees (no wait). The leader grows it while its lock checks are
	// slow and shrinks it back to Config.LockWindow once they are fast.
	LockWindow time.Duration

	lock lockRow
}

// The failover paths of a term (Record.Path).
const (
	PathLockFenced = "lock-fenced"
	PathLeaseOnly  = "lease-only"
)

// Held reports whether some holder owns the lease right now.
func (r Record) Held() bool { return r.Holder != "" && r.ExpiresAt.After(r.Now) }

// Remaining is how long the lease stays valid by the database clock; zero
// when it is free or expired.
func (r Record) Remaining() time.Duration {
	if !r.Held() {
		return 0
	}
	return r.ExpiresAt.Sub(r.Now)
}

// TermOf returns the Term the record describes.
func (r Record) TermOf() Term {
	return Term{Election: r.Election, Holder: r.Holder, Number: r.Term, AcquiredAt: r.AcquiredAt}
}

// row is the scan target of every lease query; times are integer
// milliseconds of the database clock since the Unix epoch.
type row struct {
	Name        string
	Holder      string
	Term        int64
	AcquiredAt  int64
	RenewedAt   int64
	ExpiresAt   int64
	Transitions int64
	LockServer  string
	LockSession string
	LockWindow  int64
	LockNote    string
	NowMs       int64
}

// lockRow is the session lock a lock-fenced term recorded in its row.
type lockRow struct {
	server, session string
	window          time.Duration
}

func (r row) record() Record {
	rec := Record{
		Election:    r.Name,
		Holder:      r.Holder,
		Term:        r.Term,
		AcquiredAt:  fromMillis(r.AcquiredAt),
		RenewedAt:   fromMillis(r.RenewedAt),
		ExpiresAt:   fromMillis(r.ExpiresAt),
		Transitions: r.Transitions,
		Now:         fromMillis(r.NowMs),
		Backend:     "sql",
		lock:        lockRow{server: r.LockServer, session: r.LockSession, window: time.Duration(r.LockWindow) * time.Millisecond},
	}
	switch {
	case r.Term == 0:
	case r.LockServer != "":
		rec.Path, rec.LockWindow = PathLockFenced, time.Duration(r.LockWindow)*time.Millisecond
	default:
		rec.Path, rec.PathReason = PathLeaseOnly, r.LockNote
	}
	return rec
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
