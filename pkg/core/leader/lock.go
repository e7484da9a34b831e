package leader

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/glebarez/sqlite"
	_ "github.com/go-sql-driver/mysql" // the lock session's own pool
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Errors of the session lock (the fast failover path).
var (
	// ErrLockLost: the leader's lock session no longer holds the lock, or
	// its connection failed: the term ends at once.
	ErrLockLost = errors.New("leadership lost: session lock lost")
	// ErrLockCheckDeadline: no lock check succeeded within LockWindow of
	// the start of the last successful one.
	ErrLockCheckDeadline = errors.New("leadership lost: session lock not confirmed within the lock window")
	// errLockBroken: the lock does not exclude other sessions here (the
	// session behind the connection changed, or another candidate shares
	// the leader's session): a pooler or proxy sits in between. The elector
	// falls back to the lease alone.
	errLockBroken = errors.New("session lock is not exclusive here")
)

// lockInfo is what a lock-fenced term records in the lease row: where the
// lock lives (server identity, for the file lock the side file's inode)
// and which session holds it.
type lockInfo struct {
	Server  string
	Session string
}

// sessionLock is one candidate's session lock of one election, on its own
// connection outside GORM's pool. Not safe for concurrent use: the
// elector uses it from one goroutine at a time.
type sessionLock interface {
	// acquire waits up to wait (and no longer than ctx) for the lock. It
	// reports whether it holds the lock. A cancelled ctx may cost the
	// connection; the caller closes the lock then.
	acquire(ctx context.Context, wait time.Duration) (bool, error)
	// check confirms that this session still holds the lock and is the
	// session that took it. errLockBroken when the session changed.
	check(ctx context.Context) error
	info() lockInfo
	// close frees the lock (closing the session) and the connection.
	close() error
	// takeoverWait is how long a candidate that got the lock waits, from
	// the lock call's return, before it may take the lease of a holder
	// whose lock window is window.
	takeoverWait(window time.Duration) time.Duration
	// windowed reports whether the lock can be lost without its holder's
	// doing (a server ends sessions), so that the holder may act only
	// within a lock window of its last check.
	windowed() bool
}

// lockDrift is the clock-rate difference between two replicas that the
// takeover wait absorbs (10%), and lockEpsilon covers the scheduling of the
// takeover itself.
const (
	lockDrift   = 0.1
	lockEpsilon = 5 * time.Millisecond
)

func sqlTakeoverWait(window time.Duration) time.Duration {
	return time.Duration(float64(window)*(1+lockDrift)) + lockEpsilon
}

// lockKey names the lock of election in database db: 40 hex digits of a
// hash, so it fits MariaDB's 64 characters and cannot collide across the
// databases of one server.
func lockKey(db, election string) [sha256.Size]byte {
	return sha256.Sum256([]byte("dubbo-admin-leader\x00" + db + "\x00" + election))
}

// openSessionLock opens the lock of election on a connection of its own to
// the database behind db (same DSN and driver options, a pool of one
// connection that is never returned).
//
// counted, if not nil, is called for every statement the lock runs on its
// connection.
func openSessionLock(ctx context.Context, db *gorm.DB, election string, counted func()) (sessionLock, error) {
	if counted == nil {
		counted = func() {}
	}
	switch d := db.Dialector.(type) {
	case *sqlite.Dialector:
		return openFileLock(d.DSN, election)
	case *gormmysql.Dialector:
		pool, err := sql.Open("mysql", d.DSN)
		if err != nil {
			return nil, fmt.Errorf("open the lock session: %w", err)
		}
		return newSQLLock(ctx, pool, `SELECT COALESCE(DATABASE(), '')`, mysqlLock(election), counted)
	case *postgres.Dialector:
		cfg, err := pgx.ParseConfig(d.DSN)
		if err != nil {
			return nil, fmt.Errorf("open the lock session: parse the DSN: %w", errors.New(redactPgErr(err)))
		}
		return newSQLLock(ctx, stdlib.OpenDB(*cfg, d.OptionOpenDB...), `SELECT current_database()`, postgresLock(election), counted)
	}
	return nil, fmt.Errorf("leader: no session lock for database dialect %q", db.Dialector.Name())
}

// redactPgErr keeps pgx's parse error message but never a password in it.
func redactPgErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "password"); i >= 0 {
		return s[:i] + "(redacted)"
	}
	return s
}

// sqlDialectLock is the SQL a server-side lock needs.
type sqlDialectLock struct {
	// setup runs once on the session (PostgreSQL: lock_timeout).
	setup func(wait time.Duration) []string
	// acquire returns 1 when the lock was taken within wait, 0 otherwise.
	acquire func(wait time.Duration) (string, []any)
	// check returns the session id and whether this session holds the lock.
	check string
	// checkArgs are check's arguments.
	checkArgs []any
	// unlock frees the lock (a graceful close; the session is discarded
	// after it anyway).
	unlock string
	// identity returns the server identity and the session id.
	identity string
	// lockTimeout is an error of acquire that only means "not yet".
	lockTimeout func(error) bool
}

func mysqlLock(election string) func(dbName string) sqlDialectLock {
	return func(dbName string) sqlDialectLock {
		k := lockKey(dbName, election)
		name := "dubbo-admin-" + hex.EncodeToString(k[:20])
		return sqlDialectLock{
			acquire: func(wait time.Duration) (string, []any) {
				return `SELECT COALESCE(GET_LOCK(?, ?), 0)`, []any{name, max(wait, time.Millisecond).Seconds()}
			},
			check:     `SELECT CAST(CONNECTION_ID() AS CHAR), COALESCE(IS_USED_LOCK(?) = CONNECTION_ID(), 0)`,
			checkArgs: []any{name},
			unlock:    `SELECT RELEASE_LOCK(?)`,
			identity:  `SELECT CONCAT('mysql:', @@hostname, ':', @@port, ':', @@server_id, '/', COALESCE(DATABASE(), '')), CAST(CONNECTION_ID() AS CHAR)`,
		}
	}
}

func postgresLock(election string) func(dbName string) sqlDialectLock {
	return func(dbName string) sqlDialectLock {
		k := lockKey(dbName, election)
		k1 := int64(binary.BigEndian.Uint32(k[0:4]) & 0x7fffffff)
		k2 := int64(binary.BigEndian.Uint32(k[4:8]) & 0x7fffffff)
		return sqlDialectLock{
			setup: func(wait time.Duration) []string {
				return []string{`SET lock_timeout = ` + strconv.FormatInt(max(wait.Milliseconds(), 1), 10)}
			},
			acquire: func(time.Duration) (string, []any) {
				return `SELECT CAST(1 AS INTEGER) FROM (SELECT pg_advisory_lock(CAST($1 AS INTEGER), CAST($2 AS INTEGER))) AS l`, []any{k1, k2}
			},
			check: `SELECT CAST(pg_backend_pid() AS TEXT), CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted ` +
				`AND pid = pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) ` +
				`AND CAST(classid AS BIGINT) = $1 AND CAST(objid AS BIGINT) = $2 AND objsubid = 2) THEN 1 ELSE 0 END`,
			checkArgs: []any{k1, k2},
			unlock:    `SELECT pg_advisory_unlock(CAST($1 AS INTEGER), CAST($2 AS INTEGER))`,
			identity: `SELECT 'postgres:' || COALESCE(host(inet_server_addr()), 'local') || ':' || COALESCE(CAST(inet_server_port() AS TEXT), '') ` +
				`|| ':' || CAST(EXTRACT(EPOCH FROM pg_postmaster_start_time()) AS TEXT) || '/' || current_database(), CAST(pg_backend_pid() AS TEXT)`,
			lockTimeout: func(err error) bool {
				return strings.Contains(err.Error(), "55P03") || strings.Contains(err.Error(), "lock timeout")
			},
		}
	}
}

// sqlLock is a MySQL/MariaDB GET_LOCK or a PostgreSQL advisory lock held by
// one session: a *sql.Conn of a pool of its own, so that no pool recycles,
// closes or hands out the locked session.
type sqlLock struct {
	pool    *sql.DB
	conn    *sql.Conn
	sql     sqlDialectLock
	id      lockInfo
	setWait time.Duration
	held    bool
	counted func()
}

func newSQLLock(ctx context.Context, pool *sql.DB, dbNameQuery string, dl func(dbName string) sqlDialectLock, counted func()) (*sqlLock, error) {
	pool.SetMaxOpenConns(1)
	pool.SetMaxIdleConns(0)
	conn, err := pool.Conn(ctx)
	if err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("open the lock session: %w", err)
	}
	l := &sqlLock{pool: pool, conn: conn, counted: counted}
	counted()
	counted()
	var dbName string
	if err := conn.QueryRowContext(ctx, dbNameQuery).Scan(&dbName); err != nil {
		_ = l.close()
		return nil, fmt.Errorf("open the lock session: read the database name: %w", err)
	}
	l.sql = dl(dbName)
	if err := conn.QueryRowContext(ctx, l.sql.identity).Scan(&l.id.Server, &l.id.Session); err != nil {
		_ = l.close()
		return nil, fmt.Errorf("open the lock session: read the server identity: %w", err)
	}
	return l, nil
}

func (l *sqlLock) info() lockInfo { return l.id }

func (l *sqlLock) takeoverWait(window time.Duration) time.Duration { return sqlTakeoverWait(window) }

func (l *sqlLock) windowed() bool { return true }

func (l *sqlLock) acquire(ctx context.Context, wait time.Duration) (bool, error) {
	if l.held {
		return true, nil
	}
	if l.sql.setup != nil && wait != l.setWait {
		for _, s := range l.sql.setup(wait) {
			l.counted()
			if _, err := l.conn.ExecContext(ctx, s); err != nil {
				return false, fmt.Errorf("session lock: %w", err)
			}
		}
		l.setWait = wait
	}
	q, args := l.sql.acquire(wait)
	var got int64
	l.counted()
	err := l.conn.QueryRowContext(ctx, q, args...).Scan(&got)
	if err != nil && l.sql.lockTimeout != nil && l.sql.lockTimeout(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session lock: wait: %w", err)
	}
	if got != 1 {
		return false, nil
	}
	l.held = true
	// The session that took the lock must be the one that was identified:
	// a pooler in transaction mode runs each statement on any server
	// session.
	if err := l.check(ctx); err != nil {
		return true, err
	}
	return true, nil
}

func (l *sqlLock) check(ctx context.Context) error {
	var session string
	var owned int64
	l.counted()
	if err := l.conn.QueryRowContext(ctx, l.sql.check, l.sql.checkArgs...).Scan(&session, &owned); err != nil {
		return fmt.Errorf("%w: check: %w", ErrLockLost, err)
	}
	if session != l.id.Session {
		return fmt.Errorf("%w: the lock's server session changed from %s to %s between two statements", errLockBroken, l.id.Session, session)
	}
	if owned != 1 {
		return fmt.Errorf("%w: the server no longer holds it for session %s", ErrLockLost, session)
	}
	return nil
}

// close discards the session: the server frees its locks when it ends,
// and the connection never goes back to a pool (a pooled session would keep
// the lock, and the locks are re-entrant).
func (l *sqlLock) close() error {
	var err error
	if l.conn != nil {
		if l.held {
			// Unlock first so that a waiter wakes at once, not once the
			// server noticed the closed connection.
			ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
			l.counted()
			_, _ = l.conn.ExecContext(ctx, l.sql.unlock, l.sql.checkArgs...)
			cancel()
		}
		err = l.conn.Raw(func(any) error { return driver.ErrBadConn })
		if errors.Is(err, driver.ErrBadConn) {
			err = nil
		}
		if cerr := l.conn.Close(); cerr != nil && !errors.Is(cerr, sql.ErrConnDone) && err == nil {
			err = cerr
		}
	}
	if perr := l.pool.Close(); perr != nil && err == nil {
		err = perr
	}
	return err
}

// unlockTimeout bounds the graceful unlock of close.
const unlockTimeout = 100 * time.Millisecond

// fileLock is an flock(2) on a side file next to the SQLite database. The
// kernel frees it only when its descriptor is closed: by close, or by the
// death of the process.
type fileLock struct {
	path string
	f    *os.File
	id   lockInfo
	held bool
}

// fileLockPoll is how often a waiting candidate retries a non-blocking
// flock (a blocking one could not honour its context).
const fileLockPoll = 2 * time.Millisecond

func openFileLock(dsn, election string) (*fileLock, error) {
	file, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if file == "" || file == ":memory:" {
		return nil, errors.New("leader: no session lock for an in-memory SQLite database")
	}
	k := lockKey(file, election)
	path := file + "-leader-" + hex.EncodeToString(k[:8]) + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the lock file: %w", err)
	}
	id, err := inodeOf(f)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &fileLock{path: path, f: f, id: lockInfo{Server: "sqlite:" + id, Session: strconv.Itoa(os.Getpid()) + ":" + strconv.FormatUint(uint64(f.Fd()), 10)}}, nil
}

func inodeOf(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat the lock file: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", errors.New("leader: the lock file has no inode")
	}
	return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(st.Ino, 10), nil
}

func (l *fileLock) info() lockInfo { return l.id }

// takeoverWait is zero: the kernel frees the lock only when the holder's
// descriptor is closed, and the holder closes it only after Resign released
// the lease or once its term's ValidUntil passed (the runtime fail-stops
// the components by then); a process that died cannot act.
func (l *fileLock) takeoverWait(time.Duration) time.Duration { return 0 }

// windowed is false: only the holder's own close (or death) frees an flock.
func (l *fileLock) windowed() bool { return false }

func (l *fileLock) acquire(ctx context.Context, wait time.Duration) (bool, error) {
	if l.held {
		return true, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			l.held = true
			return true, l.check(ctx)
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return false, fmt.Errorf("session lock: flock %s: %w", l.path, err)
		}
		poll := time.NewTimer(fileLockPoll)
		select {
		case <-ctx.Done():
			poll.Stop()
			return false, context.Cause(ctx)
		case <-t.C:
			poll.Stop()
			return false, nil
		case <-poll.C:
		}
	}
}

// check confirms the side file is still the one locked: a deleted or
// replaced file would let another candidate lock a new inode.
func (l *fileLock) check(context.Context) error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("%w: the lock file: %w", ErrLockLost, err)
	}
	defer f.Close()
	id, err := inodeOf(f)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLockLost, err)
	}
	if "sqlite:"+id != l.id.Server {
		return fmt.Errorf("%w: the lock file %s was replaced", ErrLockLost, l.path)
	}
	return nil
}

func (l *fileLock) close() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close the lock file: %w", err)
	}
	return nil
}
