package app

import (
	"context"
	"io"

	"github.com/go-logr/logr"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// election is what a leader command works on: the configured backend's
// elector, built as a replica builds it (buildElector) and prepared, and
// Admin's database, which holds the epochs and the membership table
// whatever elects.
type election struct {
	leader.Elector
	// release is the backend's force release; nil when it has none.
	release leader.ForceReleaser
	db      *gorm.DB
	// leaseTable: table leader_leases existed before Prepare, so that the
	// SQL backend's status tells a dropped table from a database no
	// replica has used.
	leaseTable bool
}

// withElector runs fn on the configured election (election.backend: sql,
// kubernetes or etcd), prepared: tables created, connected, credentials
// and permissions checked. It refuses an SQLite file that does not exist,
// whatever the backend, rather than create an empty database.
func withElector(ctx context.Context, cfg Config, fn func(el election) error) error {
	if err := checkSQLiteFile(cfg.Database, true); err != nil {
		return err
	}
	db, err := database.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer database.Close(db)
	epochs, err := newEpochs(cfg, db)
	if err != nil {
		return err
	}
	e, err := buildElector(cfg, db, epochs, nil, logr.Discard())
	if err != nil {
		return err
	}
	if c, ok := e.(io.Closer); ok {
		defer c.Close()
	}
	el := election{Elector: e, db: db, leaseTable: hasLeaseTable(ctx, db)}
	el.release, _ = e.(leader.ForceReleaser)
	if err := e.Prepare(ctx); err != nil {
		return err
	}
	return fn(el)
}

func hasLeaseTable(ctx context.Context, db *gorm.DB) bool {
	return db.WithContext(ctx).Migrator().HasTable("leader_leases")
}
