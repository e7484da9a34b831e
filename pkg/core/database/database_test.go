package database_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/testenv"
	"github.com/apache/dubbo-admin/pkg/core/database"
)

func TestDatabase(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "database")
}

var _ = Describe("Redact", Label("quick"), func() {
	DescribeTable("hides the password and keeps the rest",
		func(driver, dsn, want string) {
			got := database.Redact(driver, dsn)
			Expect(got).NotTo(ContainSubstring("s3cret"))
			Expect(got).To(Equal(want))
		},
		Entry("mysql", database.MySQL, "admin:s3cret@tcp(db:3306)/admin?parseTime=true", "admin:xxxxx@tcp(db:3306)/admin?parseTime=true"),
		Entry("postgres URL", database.Postgres, "postgres://admin:s3cret@db:5432/admin?sslmode=disable", "postgres://admin:xxxxx@db:5432/admin?sslmode=disable"),
		Entry("postgres URL with password parameter", database.Postgres, "postgres://admin@db/admin?password=s3cret", "postgres://admin@db/admin?password=xxxxx"),
		Entry("postgres key=value", database.Postgres, "host=db user=admin password=s3cret dbname=admin", "host=db user=admin password=xxxxx dbname=admin"),
		Entry("postgres quoted key=value", database.Postgres, "host=db password='s3cret x' dbname=admin", "host=db password=xxxxx dbname=admin"),
		Entry("unparsable mysql", database.MySQL, "admin:s3cret@nonsense(", "xxxxx"),
		Entry("postgres URL with sslpassword", database.Postgres,
			"postgres://admin:s3cret@db/admin?sslmode=verify-full&sslpassword=s3cret&sslkey=/k.pem",
			"postgres://admin:xxxxx@db/admin?sslmode=verify-full&sslpassword=xxxxx&sslkey=/k.pem"),
		Entry("postgresql URL with passfile and upper-case keys", database.Postgres,
			"postgresql://admin@db/admin?PassFile=/run/s3cret&SSLPassword=s3cret&Password=s3cret",
			"postgresql://admin@db/admin?PassFile=xxxxx&SSLPassword=xxxxx&Password=xxxxx"),
		Entry("postgres URL with an escaped key", database.Postgres,
			"postgres://db/admin?ssl%70assword=s3cret", "postgres://db/admin?ssl%70assword=xxxxx"),
		Entry("postgres key=value with sslpassword and passfile", database.Postgres,
			"host=db sslpassword=s3cret passfile=/run/s3cret user=admin",
			"host=db sslpassword=xxxxx passfile=xxxxx user=admin"),
		Entry("postgres key=value, quoted, spaces around =", database.Postgres,
			"host=db SSLPASSWORD = 'it\\'s s3cret' dbname=admin",
			"host=db SSLPASSWORD = xxxxx dbname=admin"),
		Entry("postgres key=value holding a URL", database.Postgres,
			"host=db password=s3cret application_name=http://x",
			"host=db password=xxxxx application_name=http://x"),
		Entry("postgres key=value: a key that merely contains password is kept", database.Postgres,
			"host=db password_hint=none password=s3cret",
			"host=db password_hint=none password=xxxxx"),
		Entry("mysql parameter ending in password", database.MySQL,
			"admin:s3cret@tcp(db:3306)/admin?sslpassword=s3cret",
			"admin:xxxxx@tcp(db:3306)/admin?sslpassword=xxxxx"),
	)

	It("never prints an sslpassword or passfile in a connection error", func(ctx SpecContext) {
		for _, dsn := range []string{
			"postgres://admin@127.0.0.1:1/admin?sslmode=disable&connect_timeout=2&sslpassword=s3cret",
			"host=127.0.0.1 port=1 sslmode=disable connect_timeout=2 passfile=/nonexistent/s3cret",
		} {
			_, err := database.Open(ctx, database.Config{Driver: database.Postgres, DSN: dsn})
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		}
	})

	It("never prints the password in a connection error", func(ctx SpecContext) {
		_, err := database.Open(ctx, database.Config{Driver: database.Postgres, DSN: "postgres://admin:s3cret@127.0.0.1:1/admin?sslmode=disable&connect_timeout=2"})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		_, err = database.Open(ctx, database.Config{Driver: database.MySQL, DSN: "admin:s3cret@tcp(127.0.0.1:1)/admin?timeout=2s"})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		Expect(database.Config{Driver: database.MySQL, DSN: "admin:s3cret@tcp(db)/x"}.String()).NotTo(ContainSubstring("s3cret"))
	})
})

var _ = Describe("Config", Label("quick"), func() {
	DescribeTable("rejects bad input naming the field",
		func(cfg database.Config, want string) {
			err := cfg.Validate()
			Expect(err).To(MatchError(database.ErrConfig))
			Expect(err.Error()).To(ContainSubstring(want))
			Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		},
		Entry("unknown driver", database.Config{Driver: "oracle", DSN: "x"}, `database.driver "oracle"`),
		Entry("empty DSN", database.Config{Driver: database.SQLite}, "database.dsn: must not be empty"),
		Entry("sub-millisecond I/O timeout", database.Config{Driver: database.SQLite, DSN: "x.db", IOTimeout: time.Microsecond}, "database.ioTimeout"),
		Entry("negative pool", database.Config{Driver: database.SQLite, DSN: "x.db", MaxOpenConns: -1}, "database.maxOpenConns"),
		Entry("bad mysql DSN", database.Config{Driver: database.MySQL, DSN: "admin:s3cret@nonsense("}, "not a MySQL DSN"),
	)

	It("refuses an in-memory SQLite database, which replicas cannot share", func() {
		_, err := database.SQLiteDSN(":memory:")
		Expect(err).To(MatchError(database.ErrConfig))
	})

	It("opens SQLite in WAL mode with a busy timeout, creating the directory", func(ctx context.Context) {
		path := filepath.Join(GinkgoT().TempDir(), "nested", "admin.db")
		db, err := database.Open(ctx, database.Config{Driver: database.SQLite, DSN: path})
		Expect(err).NotTo(HaveOccurred())
		defer database.Close(db)
		var mode string
		Expect(db.Raw("PRAGMA journal_mode").Scan(&mode).Error).To(Succeed())
		Expect(mode).To(Equal("wal"))
		var timeout int
		Expect(db.Raw("PRAGMA busy_timeout").Scan(&timeout).Error).To(Succeed())
		Expect(timeout).To(Equal(5000))
	})
})
