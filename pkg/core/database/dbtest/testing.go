package dbtest

import (
	"context"
	"testing"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
)

// Pool provisions a database of dialect for a plain test or benchmark and
// opens a pool on it; cleanup closes the pool and drops the database. When
// the dialect's server is absent it reports the skip (see ReportSkip) and
// skips tb. suite names the caller in the skip line.
func Pool(tb testing.TB, suite, dialect string) *gorm.DB {
	tb.Helper()
	ctx := context.Background()
	tdb, reason, err := Provision(ctx, dialect)
	if err != nil {
		tb.Fatal(err)
	}
	if reason != "" {
		ReportSkip(suite, dialect, reason)
		tb.Skip(dialect + ": " + reason)
	}
	ReportRan(suite, dialect, tdb.Addr)
	tb.Cleanup(func() {
		if err := tdb.Drop(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	db, err := tdb.Open(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = database.Close(db) })
	return db
}
