package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/mariadbserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Database is the database the replicas of one cluster share.
type Database struct {
	// Config reaches the database directly.
	Config database.Config
	// Addr is the server's host:port, where a faultproxy.Proxy forwards to;
	// empty for SQLite.
	Addr string
}

// FromDBTest returns the Database of a throwaway dbtest database.
func FromDBTest(d *dbtest.DB) Database { return Database{Config: d.Config, Addr: d.Addr} }

// Dialect is the database's driver name (sqlite, mysql, postgres).
func (d Database) Dialect() string { return d.Config.Driver }

// Via returns a config that reaches the same database through addr, a proxy
// in front of the server. SQLite has no address: it returns Config.
func (d Database) Via(addr string) (database.Config, error) {
	switch d.Config.Driver {
	case database.MySQL:
		mc, err := mysql.ParseDSN(d.Config.DSN)
		if err != nil {
			return database.Config{}, fmt.Errorf("harness: parse mysql DSN %s: %w", d.Config, err)
		}
		mc.Addr = addr
		return database.Config{Driver: d.Config.Driver, DSN: mc.FormatDSN(), MaxOpenConns: d.Config.MaxOpenConns}, nil
	case database.Postgres:
		u, err := url.Parse(d.Config.DSN)
		if err != nil {
			return database.Config{}, fmt.Errorf("harness: parse postgres DSN %s: %w", d.Config, err)
		}
		u.Host = addr
		return database.Config{Driver: d.Config.Driver, DSN: u.String(), MaxOpenConns: d.Config.MaxOpenConns}, nil
	default:
		return d.Config, nil
	}
}

// ProvisionMariaDB creates a database with a random name on a throwaway
// MariaDB server (the server and its data go away with the server's
// directory, so there is nothing to drop).
func ProvisionMariaDB(ctx context.Context, srv *mariadbserver.Server) (Database, error) {
	server := database.Config{Driver: database.MySQL, DSN: srv.DSN(), MaxOpenConns: 2}
	db, err := database.Open(ctx, server)
	if err != nil {
		return Database{}, fmt.Errorf("harness: connect to throwaway mariadb: %w", err)
	}
	defer database.Close(db)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return Database{}, fmt.Errorf("harness: random database name: %w", err)
	}
	name := "harness_" + hex.EncodeToString(b)
	if err := db.WithContext(ctx).Exec("CREATE DATABASE " + name).Error; err != nil {
		return Database{}, fmt.Errorf("harness: create database %s: %w", name, err)
	}
	mc, err := mysql.ParseDSN(srv.DSN())
	if err != nil {
		return Database{}, fmt.Errorf("harness: parse mariadb DSN: %w", err)
	}
	mc.DBName = name
	return Database{Config: database.Config{Driver: database.MySQL, DSN: mc.FormatDSN()}, Addr: srv.Addr()}, nil
}

// prepare creates the store's table and the write log on db, so that the
// triggers exist before any replica writes.
func prepare(ctx context.Context, db *gorm.DB) (*store.GORM, *WriteLog, error) {
	st, err := store.NewGORM(db)
	if err != nil {
		return nil, nil, fmt.Errorf("harness: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, nil, fmt.Errorf("harness: %w", err)
	}
	wl, err := InstallWriteLog(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	return st, wl, nil
}
