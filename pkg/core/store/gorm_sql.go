package store

import (
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// Table resources holds every resource of the GORM backend, in the same
// database as leader_leases:
//
//	kind, res_key      primary key; byte order on every dialect
//	labels             JSON object text ({} when none)
//	spec               compacted JSON text
//	digest             sha256 hex of labels and spec: Replace compares it
//	                   instead of reading every spec
//	resource_version   per-resource counter, bumped on every write
//	term               leader term that wrote the row, 0 for unfenced
//	updated_at         local clock of the writer, Unix milliseconds
const resourceColumns = `kind, res_key, labels, spec, digest, resource_version, term, updated_at`

const resourceColumnCount = 8

// sqlDialect holds the only SQL that differs between databases.
type sqlDialect struct {
	name        string
	createTable string
	// migrateLock, when set, runs first in the migration transaction to
	// serialise concurrent CREATE TABLE IF NOT EXISTS (PostgreSQL can fail
	// one of two racing creators on its catalog's unique index).
	migrateLock string
	// forUpdate is appended to a SELECT inside a write transaction. SQLite
	// has no row locks: Admin opens it with BEGIN IMMEDIATE, so every write
	// transaction already holds the database's write lock.
	forUpdate string
	// upsertTail turns a multi-row INSERT into an update of existing rows.
	upsertTail string
	// customPlans, when set, runs first in an Apply's transaction. An
	// Apply's keys are spread over the whole kind (a churn's batch), and
	// PostgreSQL's generic plan of a batch read, which it switches to once
	// a statement ran five times, takes the key range as its index
	// condition and filters that range by the list: 100k rows read for a
	// batch. A Replace's chunks hold neighbouring keys and keep the
	// generic plans, whose planning they would otherwise pay per chunk.
	customPlans string
	// batchSize is the default rows per batched statement.
	batchSize int
}

var sqlDialects = map[string]sqlDialect{
	"sqlite": {
		name: "sqlite",
		createTable: `CREATE TABLE IF NOT EXISTS resources (
	kind TEXT NOT NULL,
	res_key TEXT NOT NULL,
	labels TEXT NOT NULL,
	spec TEXT NOT NULL,
	digest TEXT NOT NULL,
	resource_version INTEGER NOT NULL,
	term INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (kind, res_key)
)`,
		upsertTail: onConflictTail,
		batchSize:  DefaultSQLiteBatchSize,
	},
	"mysql": {
		name: "mysql",
		// utf8mb4_bin orders by code point, which is byte order for UTF-8.
		createTable: `CREATE TABLE IF NOT EXISTS resources (
	kind VARCHAR(128) NOT NULL,
	res_key VARCHAR(512) NOT NULL,
	labels TEXT NOT NULL,
	spec LONGTEXT NOT NULL,
	digest CHAR(64) NOT NULL,
	resource_version BIGINT NOT NULL,
	term BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (kind, res_key)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
		forUpdate: ` FOR UPDATE`,
		upsertTail: ` ON DUPLICATE KEY UPDATE labels = VALUES(labels), spec = VALUES(spec), digest = VALUES(digest),` +
			` resource_version = VALUES(resource_version), term = VALUES(term), updated_at = VALUES(updated_at)`,
		batchSize: DefaultBatchSize,
	},
	"postgres": {
		name: "postgres",
		// COLLATE "C": byte order whatever the database's locale.
		createTable: `CREATE TABLE IF NOT EXISTS resources (
	kind VARCHAR(128) COLLATE "C" NOT NULL,
	res_key VARCHAR(512) COLLATE "C" NOT NULL,
	labels TEXT NOT NULL,
	spec TEXT NOT NULL,
	digest VARCHAR(64) NOT NULL,
	resource_version BIGINT NOT NULL,
	term BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (kind, res_key)
)`,
		migrateLock: `SELECT pg_advisory_xact_lock(7305733521649071969)`,
		forUpdate:   ` FOR UPDATE`,
		upsertTail:  onConflictTail,
		batchSize:   DefaultBatchSize,
		customPlans: `SET LOCAL plan_cache_mode = force_custom_plan`,
	},
}

const onConflictTail = ` ON CONFLICT (kind, res_key) DO UPDATE SET labels = excluded.labels, spec = excluded.spec, digest = excluded.digest,` +
	` resource_version = excluded.resource_version, term = excluded.term, updated_at = excluded.updated_at`

func sqlDialectOf(db *gorm.DB) (sqlDialect, error) {
	d, ok := sqlDialects[db.Dialector.Name()]
	if !ok {
		return sqlDialect{}, fmt.Errorf("store: unsupported database dialect %q (want sqlite, mysql or postgres)", db.Dialector.Name())
	}
	return d, nil
}

// insertRows is a multi-row INSERT of n resources.
func insertRows(n int) string {
	var b strings.Builder
	b.Grow(64 + n*(2*resourceColumnCount+2))
	b.WriteString(`INSERT INTO resources (` + resourceColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// whereKeys selects keys of one kind: the WHERE clause and its arguments.
// It bounds the primary key's range by the keys' least and greatest as well
// as listing them, so that a plan that cannot use the list in the index
// scans the keys' range, not the whole kind (see sqlDialect.customPlans for
// keys far apart).
func whereKeys(kind string, keys []string) (string, []any) {
	var b strings.Builder
	b.Grow(64 + 2*len(keys))
	b.WriteString(` WHERE kind = ? AND res_key >= ? AND res_key <= ? AND res_key IN (`)
	args := make([]any, 0, len(keys)+3)
	args = append(args, kind, slices.Min(keys), slices.Max(keys))
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('?')
		args = append(args, k)
	}
	b.WriteByte(')')
	return b.String(), args
}

const selectResource = `SELECT ` + resourceColumns + ` FROM resources`

// resourceRow is the scan target of every resource query.
type resourceRow struct {
	Kind            string
	ResKey          string
	Labels          string
	Spec            string
	Digest          string
	ResourceVersion int64
	Term            int64
	UpdatedAt       int64
}

func rowOf(s stored, version, term, at int64) resourceRow {
	return resourceRow{
		Kind: s.r.Kind, ResKey: s.r.Key, Labels: s.labelsJSON, Spec: string(s.r.Spec), Digest: s.digest,
		ResourceVersion: version, Term: term, UpdatedAt: at,
	}
}

func (r resourceRow) args() []any {
	return []any{r.Kind, r.ResKey, r.Labels, r.Spec, r.Digest, r.ResourceVersion, r.Term, r.UpdatedAt}
}

func (r resourceRow) size() int { return len(r.ResKey) + len(r.Labels) + len(r.Spec) + 128 }
