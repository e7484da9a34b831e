package harness

import (
	"context"
	"fmt"
	"sync"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
)

// WriteLog is a database-ordered log of every write to table resources:
// triggers copy each inserted or updated row's term, kind and key into table
// harness_write_log, inside the writing transaction, and its auto-increment
// seq orders the writes. A fenced write takes its seq inside its
// transaction, after the fence, while it holds the lease row shared; the
// next term's acquisition waits for that transaction, so seq order is
// commit order across terms. Deletes carry no term and are not logged.
type WriteLog struct {
	db *gorm.DB

	mu      sync.Mutex
	seen    int64 // highest seq checked
	maxTerm int64 // highest term among the rows checked
	rows    int64
}

// WriteLogStats summarises the rows checked so far.
type WriteLogStats struct {
	Rows    int64
	MaxTerm int64
}

var writeLogDDL = map[string][]string{
	database.SQLite: {
		`CREATE TABLE IF NOT EXISTS harness_write_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, term BIGINT NOT NULL, kind TEXT NOT NULL, res_key TEXT NOT NULL, op TEXT NOT NULL)`,
		`CREATE TRIGGER IF NOT EXISTS harness_log_insert AFTER INSERT ON resources BEGIN INSERT INTO harness_write_log (term, kind, res_key, op) VALUES (NEW.term, NEW.kind, NEW.res_key, 'insert'); END`,
		`CREATE TRIGGER IF NOT EXISTS harness_log_update AFTER UPDATE ON resources BEGIN INSERT INTO harness_write_log (term, kind, res_key, op) VALUES (NEW.term, NEW.kind, NEW.res_key, 'update'); END`,
	},
	database.MySQL: {
		`CREATE TABLE IF NOT EXISTS harness_write_log (seq BIGINT AUTO_INCREMENT PRIMARY KEY, term BIGINT NOT NULL, kind TEXT NOT NULL, res_key TEXT NOT NULL, op VARCHAR(16) NOT NULL)`,
		`CREATE TRIGGER IF NOT EXISTS harness_log_insert AFTER INSERT ON resources FOR EACH ROW INSERT INTO harness_write_log (term, kind, res_key, op) VALUES (NEW.term, NEW.kind, NEW.res_key, 'insert')`,
		`CREATE TRIGGER IF NOT EXISTS harness_log_update AFTER UPDATE ON resources FOR EACH ROW INSERT INTO harness_write_log (term, kind, res_key, op) VALUES (NEW.term, NEW.kind, NEW.res_key, 'update')`,
	},
	database.Postgres: {
		`CREATE TABLE IF NOT EXISTS harness_write_log (seq BIGSERIAL PRIMARY KEY, term BIGINT NOT NULL, kind TEXT NOT NULL, res_key TEXT NOT NULL, op TEXT NOT NULL)`,
		`CREATE OR REPLACE FUNCTION harness_log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO harness_write_log (term, kind, res_key, op) VALUES (NEW.term, NEW.kind, NEW.res_key, lower(TG_OP)); RETURN NULL; END $$`,
		`DROP TRIGGER IF EXISTS harness_log_write ON resources`,
		`CREATE TRIGGER harness_log_write AFTER INSERT OR UPDATE ON resources FOR EACH ROW EXECUTE FUNCTION harness_log_write()`,
	},
}

// InstallWriteLog creates the log table and the triggers on table resources,
// which must exist (store.GORM.Migrate).
func InstallWriteLog(ctx context.Context, db *gorm.DB) (*WriteLog, error) {
	stmts, ok := writeLogDDL[db.Dialector.Name()]
	if !ok {
		return nil, fmt.Errorf("harness: write log: unsupported dialect %q", db.Dialector.Name())
	}
	for _, s := range stmts {
		if err := db.WithContext(ctx).Exec(s).Error; err != nil {
			return nil, fmt.Errorf("harness: install write log on %s: %w", db.Dialector.Name(), err)
		}
	}
	return &WriteLog{db: db}, nil
}

type logRow struct {
	Seq  int64
	Term int64
	Kind string
	Key  string `gorm:"column:res_key"`
}

// Check reads the rows written since the last Check and fails on the first
// write whose term is lower than a term written before it: a write of an
// old term that landed after a newer term's first write. Unfenced writes
// (term 0) are ignored.
func (w *WriteLog) Check(ctx context.Context) (WriteLogStats, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		var rows []logRow
		err := w.db.WithContext(ctx).Raw(`SELECT seq, term, kind, res_key FROM harness_write_log WHERE seq > ? ORDER BY seq LIMIT 5000`, w.seen).Scan(&rows).Error
		if err != nil {
			return w.stats(), fmt.Errorf("harness: read write log: %w", err)
		}
		for _, r := range rows {
			w.seen = r.Seq
			w.rows++
			if r.Term == 0 {
				continue
			}
			if r.Term < w.maxTerm {
				return w.stats(), fmt.Errorf("harness: write log seq %d: %s/%s written by term %d after a write of term %d", r.Seq, r.Kind, r.Key, r.Term, w.maxTerm)
			}
			w.maxTerm = r.Term
		}
		if len(rows) < 5000 {
			return w.stats(), nil
		}
	}
}

func (w *WriteLog) stats() WriteLogStats { return WriteLogStats{Rows: w.rows, MaxTerm: w.maxTerm} }

// TermsWritten returns how many rows each term wrote, from the whole log.
func (w *WriteLog) TermsWritten(ctx context.Context) (map[int64]int64, error) {
	var rows []struct {
		Term int64
		N    int64
	}
	if err := w.db.WithContext(ctx).Raw(`SELECT term, COUNT(*) AS n FROM harness_write_log GROUP BY term`).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("harness: count write log: %w", err)
	}
	out := make(map[int64]int64, len(rows))
	for _, r := range rows {
		out[r.Term] = r.N
	}
	return out, nil
}
