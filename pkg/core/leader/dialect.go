package leader

import (
	"fmt"

	"gorm.io/gorm"
)

// dialect holds the only SQL that differs between databases: the clock, the
// row locks and the idempotent insert. Everything else is written once.
type dialect struct {
	name string
	// nowMillis is an expression for the database clock in integer
	// milliseconds since the epoch, independent of the session time zone.
	nowMillis string
	// forUpdate and forShare are appended to a SELECT inside a transaction.
	// SQLite has no row locks: Admin opens it with BEGIN IMMEDIATE, so every
	// transaction already holds the database's write lock.
	forUpdate, forShare string
	insertIgnore        string
	createTable         string
}

const columns = `name, holder, term, acquired_at, renewed_at, expires_at, transitions`

var dialects = map[string]dialect{
	"sqlite": {
		name:         "sqlite",
		nowMillis:    `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`,
		insertIgnore: `INSERT OR IGNORE INTO leader_leases (` + columns + `) VALUES (?, '', 0, 0, 0, 0, 0)`,
		createTable:  createTable(""),
	},
	"mysql": {
		name: "mysql",
		// UTC_TIMESTAMP ignores the session time zone; TIMESTAMPDIFF between
		// two DATETIMEs does no zone conversion either.
		nowMillis:    `CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000 AS SIGNED)`,
		forUpdate:    ` FOR UPDATE`,
		forShare:     ` LOCK IN SHARE MODE`, // MariaDB does not accept FOR SHARE; MySQL takes both
		insertIgnore: `INSERT IGNORE INTO leader_leases (` + columns + `) VALUES (?, '', 0, 0, 0, 0, 0)`,
		createTable:  createTable(` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`),
	},
	"postgres": {
		name: "postgres",
		// statement_timestamp, not now(): inside a transaction now() is the
		// time the transaction began.
		nowMillis:    `CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)`,
		forUpdate:    ` FOR UPDATE`,
		forShare:     ` FOR SHARE`,
		insertIgnore: `INSERT INTO leader_leases (` + columns + `) VALUES (?, '', 0, 0, 0, 0, 0) ON CONFLICT (name) DO NOTHING`,
		createTable:  createTable(""),
	},
}

func createTable(suffix string) string {
	return `CREATE TABLE IF NOT EXISTS leader_leases (
	name VARCHAR(128) NOT NULL PRIMARY KEY,
	holder VARCHAR(255) NOT NULL DEFAULT '',
	term BIGINT NOT NULL DEFAULT 0,
	acquired_at BIGINT NOT NULL DEFAULT 0,
	renewed_at BIGINT NOT NULL DEFAULT 0,
	expires_at BIGINT NOT NULL DEFAULT 0,
	transitions BIGINT NOT NULL DEFAULT 0
)` + suffix
}

func dialectOf(db *gorm.DB) (dialect, error) {
	d, ok := dialects[db.Dialector.Name()]
	if !ok {
		return dialect{}, fmt.Errorf("leader: unsupported database dialect %q (want sqlite, mysql or postgres)", db.Dialector.Name())
	}
	return d, nil
}

func (d dialect) selectRow(lock string) string {
	return `SELECT ` + columns + `, ` + d.nowMillis + ` AS now_ms FROM leader_leases WHERE name = ?` + lock
}

func (d dialect) selectNow() string {
	return `SELECT ` + d.nowMillis + ` AS now_ms`
}
