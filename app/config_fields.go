package app

import (
	"fmt"
	"strconv"
	"strings"
)

// field is one setting that the environment and the command line can set.
// Its key is the YAML path; env and flag are derived names, listed here so
// that the three stay in one place.
type field struct {
	key   string // YAML path, e.g. "http.address"
	env   string // ADMIN_HTTP_ADDRESS
	flag  string // --http-address
	kind  string // flag type shown in help: string, int, float, duration
	usage string
	// scope says which commands take the flag: "run" (run only) or "all".
	scope  string
	set    func(*Config, string) error
	get    func(Config) string
	hidden bool
}

func strField(key, env, flag, scope, usage string, p func(*Config) *string) field {
	return field{key: key, env: env, flag: flag, kind: "string", scope: scope, usage: usage,
		set: func(c *Config, s string) error { *p(c) = s; return nil },
		get: func(c Config) string { return *p(&c) }}
}

func intField(key, env, flag, scope, usage string, p func(*Config) *int) field {
	return field{key: key, env: env, flag: flag, kind: "int", scope: scope, usage: usage,
		set: func(c *Config, s string) error {
			v, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("want an integer, got %q", s)
			}
			*p(c) = v
			return nil
		},
		get: func(c Config) string { return strconv.Itoa(*p(&c)) }}
}

func floatField(key, env, flag, scope, usage string, p func(*Config) *float64) field {
	return field{key: key, env: env, flag: flag, kind: "float", scope: scope, usage: usage,
		set: func(c *Config, s string) error {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return fmt.Errorf("want a number, got %q", s)
			}
			*p(c) = v
			return nil
		},
		get: func(c Config) string { return strconv.FormatFloat(*p(&c), 'g', -1, 64) }}
}

func boolField(key, env, flag, scope, usage string, p func(*Config) *bool) field {
	return field{key: key, env: env, flag: flag, kind: "bool", scope: scope, usage: usage,
		set: func(c *Config, s string) error {
			v, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("want true or false, got %q", s)
			}
			*p(c) = v
			return nil
		},
		get: func(c Config) string { return strconv.FormatBool(*p(&c)) }}
}

func durField(key, env, flag, scope, usage string, p func(*Config) *Duration) field {
	return field{key: key, env: env, flag: flag, kind: "duration", scope: scope, usage: usage,
		set: func(c *Config, s string) error {
			v, err := parseDuration(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			*p(c) = Duration(v)
			return nil
		},
		get: func(c Config) string { return p(&c).String() }}
}

// Scopes of a field's flag.
const (
	scopeAll = "all" // run and the leader commands
	scopeRun = "run"
)

// fields lists every setting the environment and flags reach, in help order
// (the election backends' last).
var fields = append([]field{
	strField("database.driver", "ADMIN_DATABASE_DRIVER", "db-driver", scopeAll,
		"database: sqlite, mysql or postgres", func(c *Config) *string { return &c.Database.Driver }),
	strField("database.dsn", "ADMIN_DATABASE_DSN", "db-dsn", scopeAll,
		"database: a file path for sqlite, user:pass@tcp(host:3306)/db for mysql, postgres://user:pass@host/db for postgres",
		func(c *Config) *string { return &c.Database.DSN }),
	intField("database.maxOpenConns", "ADMIN_DATABASE_MAX_OPEN_CONNS", "db-max-open-conns", scopeAll,
		"database: connection pool size (0: default)", func(c *Config) *int { return &c.Database.MaxOpenConns }),
	strField("store.backend", "ADMIN_STORE_BACKEND", "store", scopeRun,
		"resource store: gorm (the database, shared) or memory (one replica only)", func(c *Config) *string { return &c.Store.Backend }),
	strField("registry.url", "ADMIN_REGISTRY_URL", "registry", scopeRun,
		"Discovery's registry: file://DIR or zookeeper://host:port", func(c *Config) *string { return &c.Registry.URL }),
	durField("registry.resync", "ADMIN_REGISTRY_RESYNC", "registry-resync", scopeRun,
		"period of Discovery's full relist (0: off)", func(c *Config) *Duration { return &c.Registry.Resync }),
	strField("engine.url", "ADMIN_ENGINE_URL", "engine", scopeRun,
		"Engine's runtime: file://DIR or kubernetes", func(c *Config) *string { return &c.Engine.URL }),
	durField("engine.resync", "ADMIN_ENGINE_RESYNC", "engine-resync", scopeRun,
		"period of Engine's full relist (0: off)", func(c *Config) *Duration { return &c.Engine.Resync }),
	strField("http.address", "ADMIN_HTTP_ADDRESS", "http-address", scopeRun,
		"HTTP API host:port; replica i of --replicas listens on port+i", func(c *Config) *string { return &c.HTTP.Address }),
	durField("http.shutdownTimeout", "ADMIN_HTTP_SHUTDOWN_TIMEOUT", "http-shutdown-timeout", scopeRun,
		"bound of the HTTP server's graceful shutdown", func(c *Config) *Duration { return &c.HTTP.ShutdownTimeout }),
	boolField("http.pprof", "ADMIN_HTTP_PPROF", "http-pprof", scopeRun,
		"serve Go's runtime profiles under /debug/pprof/ on the HTTP address", func(c *Config) *bool { return &c.HTTP.Pprof }),
	strField("election.name", "ADMIN_ELECTION_NAME", "election-name", scopeAll,
		"election name: replicas with the same name elect one leader", func(c *Config) *string { return &c.Election.Name }),
	durField("election.leaseDuration", "ADMIN_ELECTION_LEASE_DURATION", "lease-duration", scopeRun,
		"how long a lease stays valid after its last renew (a crashed leader is replaced after about this long)",
		func(c *Config) *Duration { return &c.Election.LeaseDuration }),
	durField("election.renewDeadline", "ADMIN_ELECTION_RENEW_DEADLINE", "renew-deadline", scopeRun,
		"how long a leader keeps leading without a successful renew (< lease-duration)",
		func(c *Config) *Duration { return &c.Election.RenewDeadline }),
	durField("election.retryPeriod", "ADMIN_ELECTION_RETRY_PERIOD", "retry-period", scopeRun,
		"renew interval of the leader, poll interval of followers", func(c *Config) *Duration { return &c.Election.RetryPeriod }),
	floatField("election.jitterFactor", "ADMIN_ELECTION_JITTER_FACTOR", "jitter-factor", scopeRun,
		"followers poll every retry-period*(1+random*jitter-factor)", func(c *Config) *float64 { return &c.Election.JitterFactor }),
	durField("election.opTimeout", "ADMIN_ELECTION_OP_TIMEOUT", "op-timeout", scopeAll,
		"timeout of each lease statement", func(c *Config) *Duration { return &c.Election.OpTimeout }),
	boolField("election.fastFailover", "ADMIN_ELECTION_FAST_FAILOVER", "fast-failover", scopeRun,
		"session-lock fast path: a crashed leader is replaced about lock-window after the crash, not a lease duration",
		func(c *Config) *bool { return &c.Election.FastFailover }),
	durField("election.lockWindow", "ADMIN_ELECTION_LOCK_WINDOW", "lock-window", scopeRun,
		"how long a lock-fenced leader leads past the start of its last successful lock check (< renew-deadline)",
		func(c *Config) *Duration { return &c.Election.LockWindow }),
	durField("election.lockCheckPeriod", "ADMIN_ELECTION_LOCK_CHECK_PERIOD", "lock-check-period", scopeRun,
		"how often the leader checks its session lock (<= lock-window/3)", func(c *Config) *Duration { return &c.Election.LockCheckPeriod }),
	durField("runtime.drainTimeout", "ADMIN_RUNTIME_DRAIN_TIMEOUT", "drain-timeout", scopeRun,
		"how long leader components may take to stop when a term ends (then the replica exits)",
		func(c *Config) *Duration { return &c.Runtime.DrainTimeout }),
	durField("heartbeat.interval", "ADMIN_HEARTBEAT_INTERVAL", "heartbeat-interval", scopeRun,
		"run the example component examples/component/heartbeat: the leader writes a fenced Heartbeat resource this often (0: off)",
		func(c *Config) *Duration { return &c.Heartbeat.Interval }),
	strField("log.format", "ADMIN_LOG_FORMAT", "log-format", scopeAll,
		"log format: console or json", func(c *Config) *string { return &c.Log.Format }),
	strField("log.level", "ADMIN_LOG_LEVEL", "log-level", scopeAll,
		"log level: error, warn, info, debug, or a verbosity 0..10", func(c *Config) *string { return &c.Log.Level }),
	intField("replicas", "ADMIN_REPLICAS", "replicas", scopeRun,
		"replica processes to start on this machine, sharing the database: 1.."+strconv.Itoa(MaxReplicas)+"; more than 1 makes this process their supervisor, restarting a replica that exits",
		func(c *Config) *int { return &c.Replicas }),
	func() field {
		f := intField("", ReplicaIndexEnv, replicaIndexFlag, scopeRun,
			"internal: index of a replica started by --replicas", func(c *Config) *int { return &c.ReplicaIndex })
		f.hidden = true
		return f
	}(),
}, backendFields()...)

// ReplicaIndexEnv carries the replica index to the processes a supervisor
// starts (the hidden --replica-index flag does the same).
const ReplicaIndexEnv = "ADMIN_REPLICA_INDEX"

const replicaIndexFlag = "replica-index"

// ConfigEnv names the config file when --config is not given.
const ConfigEnv = "ADMIN_CONFIG"
