package leader

import (
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// dialect holds the only SQL that differs between databases: the clock, the
// row locks, the idempotent insert and the table options. Everything else
// is written once.
type dialect struct {
	name string
	// nowMillis is an expression for the database clock in integer
	// milliseconds since the epoch, independent of the session time zone.
	nowMillis string
	// forUpdate and forShare are appended to a SELECT inside a transaction.
	// SQLite has no row locks: Admin opens it with BEGIN IMMEDIATE, so every
	// transaction already holds the database's write lock.
	forUpdate, forShare string
	// insertIgnore formats an INSERT of one row that does nothing when the
	// primary key exists.
	insertIgnore func(table, columns, values string) string
	// tableSuffix ends every CREATE TABLE (MySQL: binary collation, so that
	// names compare byte for byte as on the other databases).
	tableSuffix string
}

var dialects = map[string]dialect{
	"sqlite": {
		name:      "sqlite",
		nowMillis: `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`,
		insertIgnore: func(table, columns, values string) string {
			return `INSERT OR IGNORE INTO ` + table + ` (` + columns + `) VALUES (` + values + `)`
		},
	},
	"mysql": {
		name: "mysql",
		// UTC_TIMESTAMP ignores the session time zone; TIMESTAMPDIFF between
		// two DATETIMEs does no zone conversion either.
		nowMillis: `CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000 AS SIGNED)`,
		forUpdate: ` FOR UPDATE`,
		forShare:  ` LOCK IN SHARE MODE`, // MariaDB does not accept FOR SHARE; MySQL takes both
		insertIgnore: func(table, columns, values string) string {
			return `INSERT IGNORE INTO ` + table + ` (` + columns + `) VALUES (` + values + `)`
		},
		tableSuffix: ` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
	},
	"postgres": {
		name: "postgres",
		// statement_timestamp, not now(): inside a transaction now() is the
		// time the transaction began.
		nowMillis: `CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)`,
		forUpdate: ` FOR UPDATE`,
		forShare:  ` FOR SHARE`,
		insertIgnore: func(table, columns, values string) string {
			return `INSERT INTO ` + table + ` (` + columns + `) VALUES (` + values + `) ON CONFLICT (name) DO NOTHING`
		},
	},
}

func dialectOf(db *gorm.DB) (dialect, error) {
	d, ok := dialects[db.Dialector.Name()]
	if !ok {
		return dialect{}, fmt.Errorf("leader: unsupported database dialect %q (want sqlite, mysql or postgres)", db.Dialector.Name())
	}
	return d, nil
}

// selectRow reads the row of one name, and the database clock, from table.
func (d dialect) selectRow(table, columns, lock string) string {
	return `SELECT ` + columns + `, ` + d.nowMillis + ` AS now_ms FROM ` + table + ` WHERE name = ?` + lock
}

func (d dialect) selectNow() string {
	return `SELECT ` + d.nowMillis + ` AS now_ms`
}

func (d dialect) createTable(table, body string) string {
	return `CREATE TABLE IF NOT EXISTS ` + table + ` (` + body + `)` + d.tableSuffix
}

// isMissingTable reports whether err says a table does not exist: SQLite
// "no such table", MySQL error 1146 "... doesn't exist", PostgreSQL 42P01
// "relation ... does not exist".
func isMissingTable(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "no such table") || strings.Contains(s, "1146") ||
		strings.Contains(s, "42P01") || (strings.Contains(s, "relation") && strings.Contains(s, "does not exist"))
}
