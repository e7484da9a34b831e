// Package dbtest gives each test run its own throwaway database on every
// dialect Admin supports, and says plainly when a dialect is skipped.
//
// SQLite is always available (a file in a temporary directory). MySQL/MariaDB
// and PostgreSQL are reached through server-level DSNs:
//
//	ADMIN_TEST_MYSQL_DSN     e.g. root@tcp(127.0.0.1:3306)/?parseTime=true&loc=UTC&clientFoundRows=true
//	ADMIN_TEST_POSTGRES_DSN  e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// When a variable is unset, the server is looked for at that default address;
// if it does not answer, the dialect's specs are skipped and one line saying so
// is appended to the file named by ADMIN_TEST_SKIP_LOG (make test prints it).
// When a variable is set, or ADMIN_TEST_STRICT=1, an unreachable server is a
// failure, never a skip: CI runs that way.
//
// Every Provision creates a database with a random name and Drop removes it.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
)

// Environment variables read by this package.
const (
	MySQLEnv    = "ADMIN_TEST_MYSQL_DSN"
	PostgresEnv = "ADMIN_TEST_POSTGRES_DSN"
	StrictEnv   = "ADMIN_TEST_STRICT"
	SkipLogEnv  = "ADMIN_TEST_SKIP_LOG"
)

const (
	defaultMySQLDSN    = "root@tcp(127.0.0.1:3306)/?parseTime=true&loc=UTC&clientFoundRows=true"
	defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

// Dialects lists every dialect, in the order suites run them.
var Dialects = []string{database.SQLite, database.MySQL, database.Postgres}

// DB is one throwaway database.
type DB struct {
	Dialect string
	// Config opens this database (not the server-level one).
	Config database.Config
	// Addr is the server's host:port; empty for SQLite.
	Addr string

	dir    string
	server database.Config
	name   string
}

// Strict reports whether a missing server must fail rather than skip.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// Provision creates a fresh database on dialect's server. When the server is
// neither configured nor found at its default address, it returns a nil DB
// and the reason to skip.
func Provision(ctx context.Context, dialect string) (*DB, string, error) {
	name := "admin_test_" + randomSuffix()
	switch dialect {
	case database.SQLite:
		dir, err := os.MkdirTemp("", "admin-sqlite-")
		if err != nil {
			return nil, "", err
		}
		return &DB{Dialect: dialect, dir: dir, name: name,
			Config: database.Config{Driver: database.SQLite, DSN: filepath.Join(dir, name+".db")}}, "", nil
	case database.MySQL, database.Postgres:
		server, addr, explicit, err := serverConfig(dialect)
		if err != nil {
			return nil, "", err
		}
		if !explicit && !Strict() && !answers(addr) {
			return nil, fmt.Sprintf("%s unset and nothing answers at %s", envFor(dialect), addr), nil
		}
		if err := createDatabase(ctx, server, name); err != nil {
			return nil, "", err
		}
		cfg, err := withDatabase(server, name)
		if err != nil {
			return nil, "", err
		}
		return &DB{Dialect: dialect, Config: cfg, Addr: addr, server: server, name: name}, "", nil
	default:
		return nil, "", fmt.Errorf("dbtest: unknown dialect %q", dialect)
	}
}

// Open opens a new pool on the database; each call is a separate set of
// connections, as a separate replica would have.
func (d *DB) Open(ctx context.Context) (*gorm.DB, error) {
	return database.Open(ctx, d.Config)
}

// ConfigVia returns a config that reaches the same database through addr
// (a proxy in front of the server). SQLite has no address and returns Config.
func (d *DB) ConfigVia(addr string) (database.Config, error) {
	switch d.Dialect {
	case database.MySQL:
		mc, err := mysql.ParseDSN(d.Config.DSN)
		if err != nil {
			return database.Config{}, err
		}
		mc.Addr = addr
		return database.Config{Driver: d.Dialect, DSN: mc.FormatDSN()}, nil
	case database.Postgres:
		u, err := url.Parse(d.Config.DSN)
		if err != nil {
			return database.Config{}, err
		}
		u.Host = addr
		return database.Config{Driver: d.Dialect, DSN: u.String()}, nil
	default:
		return d.Config, nil
	}
}

// Drop removes the database and everything in it.
func (d *DB) Drop(ctx context.Context) error {
	if d.Dialect == database.SQLite {
		return os.RemoveAll(d.dir)
	}
	db, err := database.Open(ctx, d.server)
	if err != nil {
		return err
	}
	defer database.Close(db)
	stmt := "DROP DATABASE IF EXISTS " + d.name
	if d.Dialect == database.Postgres {
		stmt += " WITH (FORCE)"
	}
	return db.WithContext(ctx).Exec(stmt).Error
}

func serverConfig(dialect string) (cfg database.Config, addr string, explicit bool, err error) {
	env := envFor(dialect)
	dsn := os.Getenv(env)
	explicit = dsn != ""
	if !explicit {
		dsn = defaultMySQLDSN
		if dialect == database.Postgres {
			dsn = defaultPostgresDSN
		}
	}
	cfg = database.Config{Driver: dialect, DSN: dsn, MaxOpenConns: 2}
	if dialect == database.MySQL {
		mc, perr := mysql.ParseDSN(dsn)
		if perr != nil {
			return cfg, "", explicit, fmt.Errorf("%s: not a MySQL DSN: %s", env, database.Redact(dialect, dsn))
		}
		return cfg, mc.Addr, explicit, nil
	}
	u, perr := url.Parse(dsn)
	if perr != nil || u.Host == "" {
		return cfg, "", explicit, fmt.Errorf("%s: want a postgres:// URL, got %s", env, database.Redact(dialect, dsn))
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	return cfg, host, explicit, nil
}

func withDatabase(server database.Config, name string) (database.Config, error) {
	out := database.Config{Driver: server.Driver}
	if server.Driver == database.MySQL {
		mc, err := mysql.ParseDSN(server.DSN)
		if err != nil {
			return out, err
		}
		mc.DBName = name
		out.DSN = mc.FormatDSN()
		return out, nil
	}
	u, err := url.Parse(server.DSN)
	if err != nil {
		return out, err
	}
	u.Path = "/" + name
	out.DSN = u.String()
	return out, nil
}

func createDatabase(ctx context.Context, server database.Config, name string) error {
	db, err := database.Open(ctx, server)
	if err != nil {
		return fmt.Errorf("dbtest: %w", err)
	}
	defer database.Close(db)
	if err := db.WithContext(ctx).Exec("CREATE DATABASE " + name).Error; err != nil {
		return fmt.Errorf("dbtest: create database %s on %s: %w", name, server, err)
	}
	return nil
}

func envFor(dialect string) string {
	if dialect == database.MySQL {
		return MySQLEnv
	}
	return PostgresEnv
}

func answers(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func randomSuffix() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

var skipLogMu sync.Mutex

// ReportSkip records that suite skipped dialect's specs, once per line, in
// the file named by ADMIN_TEST_SKIP_LOG, and also on stderr.
func ReportSkip(suite, dialect, reason string) {
	line := fmt.Sprintf("SKIPPED %s specs of %s: %s", dialect, suite, reason)
	fmt.Fprintln(os.Stderr, line)
	appendOnce(os.Getenv(SkipLogEnv), &skipLogMu, line)
}

// appendOnce appends line to the file at path unless it holds it already;
// an empty path does nothing.
func appendOnce(path string, mu *sync.Mutex, line string) {
	if path == "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), line+"\n") {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}
