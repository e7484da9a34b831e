package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/apache/dubbo-admin/app"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

// freeAddr is a loopback host:port that nothing listens on right now.
func freeAddr() string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := ln.Addr().String()
	Expect(ln.Close()).To(Succeed())
	return addr
}

// forward accepts on addr and copies each connection to target, until the
// spec ends.
func forward(addr, target string) {
	GinkgoHelper()
	ln, err := net.Listen("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	var wg sync.WaitGroup
	DeferCleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
}

// cliRun runs `dubbo-admin run args...` in the background; the returned
// channel sends SIGTERM to it, done receives its error.
func cliRun(args ...string) (stderr *gbytes.Buffer, signals chan os.Signal, done chan error) {
	_, stderr, signals, done = cliBackground(append([]string{"run"}, args...)...)
	return stderr, signals, done
}

// cliBackground runs `dubbo-admin args...` in the background with its
// stdout and stderr in buffers; signals delivers SIGINT/SIGTERM to it, done
// receives its error.
func cliBackground(args ...string) (stdout, stderr *gbytes.Buffer, signals chan os.Signal, done chan error) {
	stdout, stderr, signals, done = gbytes.NewBuffer(), gbytes.NewBuffer(), make(chan os.Signal, 1), make(chan error, 1)
	cmd := app.CLI{
		LookupEnv: func(string) (string, bool) { return "", false },
		Signals:   func() (<-chan os.Signal, func()) { return signals, func() {} },
	}.Command()
	cmd.SetArgs(args)
	cmd.SetOut(io.MultiWriter(stdout, GinkgoWriter))
	cmd.SetErr(io.MultiWriter(stderr, GinkgoWriter))
	go func() { done <- cmd.ExecuteContext(context.Background()) }()
	return stdout, stderr, signals, done
}

// dsnWith rewrites a server DSN of db: another user and password, or
// another database name.
func dsnWith(db *dbtest.DB, user, password, name string) string {
	GinkgoHelper()
	switch db.Dialect {
	case database.MySQL:
		mc, err := mysql.ParseDSN(db.Config.DSN)
		Expect(err).NotTo(HaveOccurred())
		if user != "" {
			mc.User, mc.Passwd = user, password
		}
		if name != "" {
			mc.DBName = name
		}
		return mc.FormatDSN()
	default:
		u, err := url.Parse(db.Config.DSN)
		Expect(err).NotTo(HaveOccurred())
		if user != "" {
			u.User = url.UserPassword(user, password)
		}
		if name != "" {
			u.Path = "/" + name
		}
		return u.String()
	}
}

var _ = Describe("A replica's database at start", func() {
	for _, dialect := range []string{database.MySQL, database.Postgres} {
		Context("on "+dialect, Label(dialect), func() {
			var db *dbtest.DB
			BeforeEach(func() { db = dbtest.Ginkgo("app", dialect) })

			common := func(dsn string) []string {
				return []string{"--db-driver", dialect, "--db-dsn", dsn, "--http-address", freeAddr(),
					"--registry", examples("registry"), "--engine", examples("runtime")}
			}

			DescribeTable("fails at once, in one line, when the server answers no",
				func(user, password, name, want string) {
					started := time.Now()
					_, _, done := cliRun(common(dsnWith(db, user, password, name))...)
					var err error
					Eventually(done).Should(Receive(&err))
					Expect(err).To(HaveOccurred())
					Expect(time.Since(started)).To(BeNumerically("<", 10*time.Second))
					noInternals(err.Error())
					Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
					Expect(err.Error()).To(MatchRegexp(want))
				},
				Entry("an unknown user or a wrong password", "admin_nobody", "s3cret", "", `(?i)access denied|password authentication failed|role "admin_nobody" does not exist`),
				Entry("an unknown database", "", "", "no_such_db", `(?i)unknown database|does not exist`),
			)

			It("waits for a server that does not answer yet, and comes up when it does", func() {
				addr := freeAddr()
				via, err := db.ConfigVia(addr)
				Expect(err).NotTo(HaveOccurred())
				args := common(via.DSN)
				httpAddr := args[5]
				stderr, signals, done := cliRun(args...)
				Eventually(stderr).Should(gbytes.Say(`the database does not answer yet; retrying with backoff`))
				Consistently(done, time.Second).ShouldNot(Receive())
				forward(addr, db.Addr)
				Eventually(func() int {
					resp, err := http.Get("http://" + httpAddr + "/readyz")
					if err != nil {
						return 0
					}
					resp.Body.Close()
					return resp.StatusCode
				}).WithTimeout(time.Minute).Should(Equal(http.StatusOK))
				Expect(stderr).To(gbytes.Say(`database answers`))
				signals <- syscall.SIGTERM
				Eventually(done).WithTimeout(time.Minute).Should(Receive(BeNil()))
			})
		})
	}
})
