package app_test

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/spf13/pflag"

	"github.com/apache/dubbo-admin/app"
)

// load runs the config loading of `run` on args, env and an optional file.
func load(args []string, env map[string]string, file string) (app.Config, error) {
	GinkgoHelper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	flags := app.BindFlags(fs, "run")
	if file != "" {
		path := filepath.Join(GinkgoT().TempDir(), "admin.yaml")
		Expect(os.WriteFile(path, []byte(file), 0o600)).To(Succeed())
		args = append(args, "--config", path)
	}
	if err := fs.Parse(args); err != nil {
		return app.Config{}, err
	}
	return flags.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

var _ = Describe("Config", Label("quick"), func() {
	It("defaults to SQLite under ./data, the example sources and one replica", func() {
		cfg, err := load(nil, nil, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Database.Driver).To(Equal("sqlite"))
		Expect(cfg.Database.DSN).To(Equal("data/dubbo-admin.db"))
		Expect(cfg.Registry.URL).To(Equal("file://examples/registry"))
		Expect(cfg.Engine.URL).To(Equal("file://examples/runtime"))
		Expect(cfg.Replicas).To(Equal(1))
		Expect(cfg.ReplicaIndex).To(Equal(-1))
		Expect(cfg.HTTPAddress()).To(Equal("127.0.0.1:8080"))
	})

	It("takes the file, then the environment, then flags", func() {
		file := "http:\n  address: 127.0.0.1:9000\nelection:\n  leaseDuration: 4s\n  renewDeadline: 3s\nreplicas: 2\n"
		cfg, err := load(nil, nil, file)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.HTTP.Address).To(Equal("127.0.0.1:9000"))
		Expect(cfg.Election.LeaseDuration.D()).To(Equal(4 * time.Second))
		Expect(cfg.Replicas).To(Equal(2))

		env := map[string]string{"ADMIN_HTTP_ADDRESS": "127.0.0.1:9100", "ADMIN_REPLICAS": "3"}
		cfg, err = load(nil, env, file)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.HTTP.Address).To(Equal("127.0.0.1:9100"))
		Expect(cfg.Replicas).To(Equal(3))

		cfg, err = load([]string{"--http-address", "127.0.0.1:9200", "--replicas", "1"}, env, file)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.HTTP.Address).To(Equal("127.0.0.1:9200"))
		Expect(cfg.Replicas).To(Equal(1))
		Expect(cfg.Election.RenewDeadline.D()).To(Equal(3 * time.Second))
	})

	It("offsets the HTTP port of replica i by i", func() {
		cfg, err := load([]string{"--http-address", "127.0.0.1:9000", "--replica-index", "2"}, nil, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.HTTPAddress()).To(Equal("127.0.0.1:9002"))
		Expect(cfg.ReplicaHTTPAddress(1)).To(Equal("127.0.0.1:9001"))
	})

	DescribeTable("rejects bad input with a message that names the field",
		func(args []string, env map[string]string, file string, want string) {
			_, err := load(args, env, file)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(want))
			Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
		},
		Entry("unknown database driver", []string{"--db-driver", "oracle"}, nil, "", `database.driver "oracle"`),
		Entry("empty DSN", nil, map[string]string{"ADMIN_DATABASE_DSN": ""}, "", "database.dsn: must not be empty"),
		Entry("malformed MySQL DSN with a password", []string{"--db-driver", "mysql", "--db-dsn", "admin:s3cret@nonsense("}, nil, "", "database.dsn"),
		Entry("MySQL DSN with a password in the file, bad pool size", nil, nil,
			"database:\n  driver: mysql\n  dsn: admin:s3cret@tcp(db:3306)/admin\n  maxOpenConns: -1\n", "database.maxOpenConns"),
		Entry("unknown store backend", []string{"--store", "etcd"}, nil, "", `store.backend "etcd"`),
		Entry("memory store with several replicas", []string{"--store", "memory", "--replicas", "3"}, nil, "", `store.backend "memory"`),
		Entry("empty registry URL", []string{"--registry", ""}, nil, "", "registry.url is empty"),
		Entry("unknown registry scheme", []string{"--registry", "nacos://127.0.0.1:8848"}, nil, "", "registry.url"),
		Entry("unknown engine scheme", nil, map[string]string{"ADMIN_ENGINE_URL": "docker://local"}, "", "engine.url"),
		Entry("negative resync", nil, nil, "registry:\n  resync: -1s\n", "registry.resync"),
		Entry("HTTP address without a port", []string{"--http-address", "localhost"}, nil, "", "http.address"),
		Entry("HTTP port out of range", []string{"--http-address", "127.0.0.1:70000"}, nil, "", "http.address"),
		Entry("port 0 with several replicas", []string{"--http-address", "127.0.0.1:0", "--replicas", "2"}, nil, "", "need a fixed base port"),
		Entry("replica ports past 65535", []string{"--http-address", "127.0.0.1:65535", "--replicas", "2"}, nil, "", "exceed 65535"),
		Entry("lease not longer than the renew deadline", []string{"--lease-duration", "2s", "--renew-deadline", "2s"}, nil, "", "leaseDuration (2s) must be greater than renewDeadline (2s)"),
		Entry("renew deadline too short for the retry period", []string{"--renew-deadline", "1500ms", "--retry-period", "1s"}, nil, "", "renewDeadline (1.5s) must be greater than retryPeriod"),
		Entry("sub-millisecond timing", nil, map[string]string{"ADMIN_ELECTION_OP_TIMEOUT": "1500us"}, "", "opTimeout is 1.5ms: must be a whole number of milliseconds"),
		Entry("jitter out of range", []string{"--jitter-factor", "2"}, nil, "", "jitterFactor is 2"),
		Entry("empty election name", []string{"--election-name", ""}, nil, "", "name is empty"),
		Entry("zero replicas", []string{"--replicas", "0"}, nil, "", "replicas is 0"),
		Entry("too many replicas", nil, map[string]string{"ADMIN_REPLICAS": "1000"}, "", "replicas is 1000"),
		Entry("replicas not a number in the environment", nil, map[string]string{"ADMIN_REPLICAS": "three"}, "", "environment ADMIN_REPLICAS"),
		Entry("duration flag without a unit", []string{"--lease-duration", "10"}, nil, "", "lease-duration"),
		Entry("duration in the file without a unit", nil, nil, "election:\n  leaseDuration: 10\n", "duration"),
		Entry("unknown key in the file", nil, nil, "htpp:\n  address: x\n", `unknown key "htpp" (did you mean "http"?)`),
		Entry("drain timeout not positive", []string{"--drain-timeout", "0s"}, nil, "", "runtime.drainTimeout"),
		Entry("log format", []string{"--log-format", "xml"}, nil, "", `log.format "xml"`),
		Entry("log level", nil, map[string]string{"ADMIN_LOG_LEVEL": "loud"}, "", "log.level"),
		Entry("missing config file", []string{"--config", "/nonexistent/admin.yaml"}, nil, "", "config file"),
	)

	It("never prints a DSN password, whatever the dialect", func() {
		for _, c := range [][]string{
			{"--db-driver", "postgres", "--db-dsn", "postgres://admin:s3cret@db/admin", "--http-address", "nope"},
			{"--db-driver", "postgres", "--db-dsn", "host=db user=admin password=s3cret", "--replicas", "0"},
			{"--db-driver", "mysql", "--db-dsn", "admin:s3cret@tcp(db:3306)/admin", "--store", "x"},
		} {
			cfg, err := load(c, nil, "")
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(ContainSubstring("s3cret"))
			Expect(cfg.Database.String()).NotTo(ContainSubstring("s3cret"))
		}
		cfg, err := load([]string{"--db-driver", "mysql", "--db-dsn", "admin:s3cret@tcp(db:3306)/admin"}, nil, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Database.String()).To(Equal("mysql:admin:xxxxx@tcp(db:3306)/admin"))
	})
})
