package mariadbserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/dubbo-admin/internal/mariadbserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

func TestStopAndRestartKeepsData(t *testing.T) {
	if ok, why := mariadbserver.Available(); !ok {
		if dbtest.Strict() {
			t.Fatal(why)
		}
		dbtest.ReportSkip("internal/mariadbserver", "mariadb-server", why)
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := mariadbserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open := func() error {
		db, err := database.Open(ctx, database.Config{Driver: database.MySQL, DSN: s.DSN()})
		if err != nil {
			return err
		}
		defer database.Close(db)
		return db.Exec("CREATE DATABASE IF NOT EXISTS kept").Error
	}
	if err := open(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := open(); err == nil {
		t.Fatal("a stopped server still answered")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(ctx, database.Config{Driver: database.MySQL, DSN: s.DSN()})
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	var n int
	if err := db.Raw("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'kept'").Scan(&n).Error; err != nil || n != 1 {
		t.Fatalf("database kept across restart: n=%d err=%v", n, err)
	}
}
