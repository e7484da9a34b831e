package database

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names, as GORM's Dialector.Name reports them.
const (
	SQLite   = "sqlite"
	MySQL    = "mysql"
	Postgres = "postgres"
)

// ErrConfig is wrapped by every error about a bad database configuration.
var ErrConfig = errors.New("invalid database config")

// Config selects and tunes a database.
type Config struct {
	// Driver is one of "sqlite", "mysql" or "postgres".
	Driver string `json:"driver" yaml:"driver"`
	// DSN is a file path for sqlite, a go-sql-driver DSN for mysql
	// (user:pass@tcp(host:3306)/db) and a URL or key=value string for postgres.
	DSN string `json:"dsn" yaml:"dsn"`
	// MaxOpenConns bounds the pool; 0 keeps the default of 8.
	MaxOpenConns int `json:"maxOpenConns" yaml:"maxOpenConns"`
	// IdleTxTimeout makes the server end a session that sits idle inside a
	// transaction for this long (PostgreSQL's
	// idle_in_transaction_session_timeout, MariaDB's
	// idle_transaction_timeout, whole seconds, rounded up). A replica frozen
	// (SIGSTOP, VM pause) inside a fenced write holds a shared lock on the
	// lease row that blocks every acquisition; this bounds how long. 0 means
	// DefaultIdleTxTimeout; negative disables it. SQLite and MySQL proper
	// have no such setting.
	// Not a configuration key: the app derives it from the election timings.
	IdleTxTimeout time.Duration `json:"-" yaml:"-"`
	// IOTimeout bounds every network read and write of a connection to a
	// MySQL/MariaDB or PostgreSQL server, so that no statement, COMMIT
	// included, blocks for longer on a black-holed connection: it then
	// fails with a timeout and its connection is discarded. It bounds the
	// wait for a statement's result too, lock waits included, so it must
	// be above the longest statement Admin runs. MySQL: the driver's
	// readTimeout and writeTimeout (unless the DSN sets them), whose COMMIT
	// takes no context; PostgreSQL: a deadline on each read and write of
	// pgx's socket (it has no such setting), under any deadline pgx sets
	// itself for a cancelled context; a failed statement there returns
	// after up to twice the timeout, as pgx first sends a cancel request on
	// a new connection, bounded the same way. 0 means DefaultIOTimeout;
	// negative disables it. SQLite has no network and ignores it.
	// Not a configuration key: the app sets it to the election's
	// OpTimeout-ish bound, so that a renew, a Resign or a fenced COMMIT on a
	// dead connection ends within the election's timings.
	IOTimeout time.Duration `json:"-" yaml:"-"`
}

// DefaultIdleTxTimeout is the idle-in-transaction limit when none is set:
// below the default lease duration, far above any transaction Admin runs.
const DefaultIdleTxTimeout = 5 * time.Second

// DefaultIOTimeout is the I/O timeout when none is set: far above any
// statement Admin runs, and finite, so that nothing waits forever.
const DefaultIOTimeout = 30 * time.Second

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	switch c.Driver {
	case SQLite, MySQL, Postgres:
	default:
		return fmt.Errorf("%w: database.driver %q: must be one of sqlite, mysql, postgres", ErrConfig, c.Driver)
	}
	if strings.TrimSpace(c.DSN) == "" {
		return fmt.Errorf("%w: database.dsn: must not be empty for driver %s", ErrConfig, c.Driver)
	}
	if c.IdleTxTimeout > 0 && c.IdleTxTimeout < time.Millisecond {
		return fmt.Errorf("%w: database.idleTxTimeout %v: must be at least 1ms (or negative to disable)", ErrConfig, c.IdleTxTimeout)
	}
	if c.IOTimeout > 0 && c.IOTimeout < time.Millisecond {
		return fmt.Errorf("%w: database.ioTimeout %v: must be at least 1ms (or negative to disable)", ErrConfig, c.IOTimeout)
	}
	if c.MaxOpenConns < 0 {
		return fmt.Errorf("%w: database.maxOpenConns %d: must not be negative", ErrConfig, c.MaxOpenConns)
	}
	if c.Driver == MySQL {
		if _, err := mysql.ParseDSN(c.DSN); err != nil {
			return fmt.Errorf("%w: database.dsn %s: not a MySQL DSN (user:pass@tcp(host:port)/db): %v", ErrConfig, Redact(c.Driver, c.DSN), redactErr(err, c.DSN))
		}
	}
	return nil
}

// String shows the config with the password hidden.
func (c Config) String() string {
	return c.Driver + ":" + Redact(c.Driver, c.DSN)
}

// Open validates cfg, opens a pool and checks that the database answers
// within ctx.
func Open(ctx context.Context, cfg Config) (*gorm.DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Driver == MySQL && cfg.idleTxTimeout() > 0 {
		// Only MariaDB has idle_transaction_timeout; MySQL refuses an
		// unknown variable, so ask the server which it is first.
		mariadb, err := isMariaDB(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if !mariadb {
			cfg.IdleTxTimeout = -1
		}
	}
	dialector, err := dialectorFor(cfg)
	if err != nil {
		return nil, err
	}
	db, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg, redactErr(err, cfg.DSN))
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg, err)
	}
	maxOpen := cfg.MaxOpenConns
	if maxOpen == 0 {
		maxOpen = 8
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxOpen)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s: %w", cfg, redactErr(err, cfg.DSN))
	}
	return db, nil
}

// Close closes the pool behind db.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

func dialectorFor(cfg Config) (gorm.Dialector, error) {
	switch cfg.Driver {
	case SQLite:
		dsn, err := SQLiteDSN(cfg.DSN)
		if err != nil {
			return nil, err
		}
		return sqlite.Open(dsn), nil
	case MySQL:
		mc, err := mysql.ParseDSN(cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("%w: database.dsn %s: %v", ErrConfig, Redact(cfg.Driver, cfg.DSN), redactErr(err, cfg.DSN))
		}
		mc.ParseTime = true
		mc.Loc = time.UTC
		mc.ClientFoundRows = true
		if t := cfg.ioTimeout(); t > 0 {
			// COMMIT takes no context in go-sql-driver: only these end it
			// on a dead connection.
			mc.ReadTimeout = cmp.Or(mc.ReadTimeout, t)
			mc.WriteTimeout = cmp.Or(mc.WriteTimeout, t)
			mc.Timeout = cmp.Or(mc.Timeout, t)
		}
		if t := cfg.idleTxTimeout(); t > 0 {
			if mc.Params == nil {
				mc.Params = map[string]string{}
			}
			mc.Params["idle_transaction_timeout"] = strconv.FormatInt(int64((t+time.Second-1)/time.Second), 10)
		}
		return gormmysql.Open(mc.FormatDSN()), nil
	default:
		pg := postgres.Config{DSN: withPostgresParam(cfg.DSN, "idle_in_transaction_session_timeout", cfg.idleTxTimeout())}
		if t := cfg.ioTimeout(); t > 0 {
			pg.OptionOpenDB = append(pg.OptionOpenDB, pgxIOTimeout(t))
		}
		return postgres.New(pg), nil
	}
}

func (c Config) ioTimeout() time.Duration {
	if c.IOTimeout == 0 {
		return DefaultIOTimeout
	}
	return c.IOTimeout
}

func (c Config) idleTxTimeout() time.Duration {
	if c.IdleTxTimeout == 0 {
		return DefaultIdleTxTimeout
	}
	return c.IdleTxTimeout
}

// withPostgresParam adds a run-time parameter in milliseconds to a URL or
// key=value DSN, unless the DSN sets it already or t is not positive.
func withPostgresParam(dsn, name string, t time.Duration) string {
	if t <= 0 || strings.Contains(dsn, name) {
		return dsn
	}
	ms := strconv.FormatInt(t.Milliseconds(), 10)
	if strings.Contains(dsn, "://") {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		return dsn + sep + name + "=" + ms
	}
	return dsn + " " + name + "=" + ms
}

// isMariaDB connects once without session variables and reads the version.
func isMariaDB(ctx context.Context, cfg Config) (bool, error) {
	probe := cfg
	probe.IdleTxTimeout = -1
	probe.MaxOpenConns = 1
	db, err := Open(ctx, probe)
	if err != nil {
		return false, err
	}
	defer Close(db)
	var version string
	if err := db.WithContext(ctx).Raw("SELECT VERSION()").Scan(&version).Error; err != nil {
		return false, fmt.Errorf("read server version of %s: %w", cfg, err)
	}
	return strings.Contains(strings.ToLower(version), "mariadb"), nil
}

// SQLiteDSN turns a file path (or a file: URI) into the DSN Admin needs:
// WAL, busy_timeout 5000 ms, synchronous NORMAL and immediate transactions.
// It creates the file's directory.
func SQLiteDSN(path string) (string, error) {
	file, query, _ := strings.Cut(strings.TrimPrefix(path, "file:"), "?")
	if file == "" || file == ":memory:" {
		return "", fmt.Errorf("%w: database.dsn %q: sqlite needs a file that every replica opens, not an in-memory database", ErrConfig, path)
	}
	if dir := filepath.Dir(file); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("database.dsn %q: create directory: %w", path, err)
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("%w: database.dsn %q: bad query: %v", ErrConfig, path, err)
	}
	pragmas := map[string]bool{}
	for _, p := range q["_pragma"] {
		name, _, _ := strings.Cut(p, "(")
		pragmas[strings.ToLower(strings.TrimSpace(name))] = true
	}
	for _, p := range []struct{ name, value string }{
		{"busy_timeout", "busy_timeout(5000)"},
		{"journal_mode", "journal_mode(WAL)"},
		{"synchronous", "synchronous(NORMAL)"},
	} {
		if !pragmas[p.name] {
			q.Add("_pragma", p.value)
		}
	}
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return "file:" + file + "?" + q.Encode(), nil
}
