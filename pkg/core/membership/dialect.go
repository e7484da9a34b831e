package membership

import "strings"

// dialect is the SQL that differs between databases: the clock (the same
// expressions as the lease's, see package leader) and the upsert.
type dialect struct {
	name        string
	nowMillis   string
	upsert      string
	createTable string
}

const (
	insertColumns = `election, identity, address, version, host, pid, role, term, error, started_at, seen_at`
	// updated on every write; started_at is written by the insert only.
	updatedColumns = `address, version, host, pid, role, term, error, seen_at`
)

func newDialect(name, nowMillis, onConflict, tableSuffix string) dialect {
	return dialect{
		name:      name,
		nowMillis: nowMillis,
		upsert: `INSERT INTO admin_replicas (` + insertColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ` +
			nowMillis + `, ` + nowMillis + `) ` + onConflict,
		createTable: `CREATE TABLE IF NOT EXISTS admin_replicas (
	election VARCHAR(128) NOT NULL,
	identity VARCHAR(255) NOT NULL,
	address VARCHAR(255) NOT NULL DEFAULT '',
	version VARCHAR(128) NOT NULL DEFAULT '',
	host VARCHAR(255) NOT NULL DEFAULT '',
	pid BIGINT NOT NULL DEFAULT 0,
	role VARCHAR(32) NOT NULL DEFAULT '',
	term BIGINT NOT NULL DEFAULT 0,
	error VARCHAR(1000) NOT NULL DEFAULT '',
	started_at BIGINT NOT NULL DEFAULT 0,
	seen_at BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (election, identity)
)` + tableSuffix,
	}
}

// set is "a = excluded.a, b = excluded.b" for the updated columns, with
// the dialect's way of naming the rejected row.
func set(ref func(col string) string) string {
	cols := strings.Split(updatedColumns, ", ")
	for i, c := range cols {
		cols[i] = c + " = " + ref(c)
	}
	return strings.Join(cols, ", ")
}

var dialects = map[string]dialect{
	"sqlite": newDialect("sqlite", `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`,
		`ON CONFLICT (election, identity) DO UPDATE SET `+set(func(c string) string { return "excluded." + c }), ""),
	"mysql": newDialect("mysql", `CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000 AS SIGNED)`,
		`ON DUPLICATE KEY UPDATE `+set(func(c string) string { return "VALUES(" + c + ")" }),
		` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`),
	"postgres": newDialect("postgres", `CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)`,
		`ON CONFLICT (election, identity) DO UPDATE SET `+set(func(c string) string { return "EXCLUDED." + c }), ""),
}
