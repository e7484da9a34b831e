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
// kubernetes or etcd), prepared (openElection), and closes it.
func withElector(ctx context.Context, cfg Config, fn func(el election) error) error {
	el, closeEl, err := openElection(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeEl()
	return fn(el)
}

// openElection opens Admin's database and builds and prepares the
// configured election: tables created, connected, credentials and
// permissions checked. It refuses an SQLite file that does not exist,
// whatever the backend, rather than create an empty database. The caller
// calls the returned close once it is done with the election.
func openElection(ctx context.Context, cfg Config) (el election, closeEl func(), err error) {
	if err := checkSQLiteFile(cfg.Database, true); err != nil {
		return election{}, nil, err
	}
	db, err := database.Open(ctx, cfg.Database)
	if err != nil {
		return election{}, nil, err
	}
	closers := []func(){func() { _ = database.Close(db) }}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	epochs, err := newEpochs(cfg, db)
	if err != nil {
		return election{}, nil, err
	}
	e, err := buildElector(cfg, db, epochs, nil, logr.Discard())
	if err != nil {
		return election{}, nil, err
	}
	if c, ok := e.(io.Closer); ok {
		closers = append(closers, func() { _ = c.Close() })
	}
	el = election{Elector: e, db: db, leaseTable: hasLeaseTable(ctx, db)}
	el.release, _ = e.(leader.ForceReleaser)
	if err := e.Prepare(ctx); err != nil {
		return election{}, nil, err
	}
	return el, closeAll, nil
}

func hasLeaseTable(ctx context.Context, db *gorm.DB) bool {
	return db.WithContext(ctx).Migrator().HasTable("leader_leases")
}
