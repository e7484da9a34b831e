package app

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/source"
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid config")

// Store backends.
const (
	StoreGORM   = "gorm"
	StoreMemory = "memory"
)

// Log formats.
const (
	LogConsole = "console"
	LogJSON    = "json"
)

// MaxReplicas bounds --replicas.
const MaxReplicas = 32

// Config is the configuration of one replica, and of the supervisor of
// several. Its YAML keys are the json tags; see config_fields.go for the
// environment variables and flags of each.
type Config struct {
	Database database.Config `json:"database"`
	Store    StoreConfig     `json:"store"`
	Registry SourceConfig    `json:"registry"`
	Engine   SourceConfig    `json:"engine"`
	HTTP     HTTPConfig      `json:"http"`
	Election ElectionConfig  `json:"election"`
	Runtime  RuntimeConfig   `json:"runtime"`
	Log      LogConfig       `json:"log"`
	// Heartbeat runs the example component of examples/component/heartbeat
	// (see app/heartbeat.go).
	Heartbeat HeartbeatConfig `json:"heartbeat"`
	// Replicas is how many replica processes `run` starts on this machine.
	Replicas int `json:"replicas"`
	// ReplicaIndex is set by the supervisor on the replicas it starts
	// (0..Replicas-1); -1 for a replica started by hand. It offsets the HTTP
	// port. Not read from the file.
	ReplicaIndex int `json:"-"`
}

// StoreConfig picks the resource store.
type StoreConfig struct {
	// Backend is "gorm" (Admin's database, shared by replicas) or "memory"
	// (one replica only).
	Backend string `json:"backend"`
}

// SourceConfig is the source of Discovery (registry) or Engine.
type SourceConfig struct {
	// URL picks the source by scheme (file://DIR, zookeeper://host:port,
	// kubernetes).
	URL string `json:"url"`
	// Resync is the period of the full relist; 0 disables it.
	Resync Duration `json:"resync"`
}

// HTTPConfig is the API server of each replica.
type HTTPConfig struct {
	// Address is host:port; replica i of a supervisor listens on port+i.
	Address string `json:"address"`
	// ShutdownTimeout bounds the graceful shutdown of the server.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ on the same
	// address (off by default: a CPU profile costs the replica CPU, and a
	// heap profile shows resource keys).
	Pprof bool `json:"pprof"`
}

// ElectionConfig is leader.Config with durations as strings.
type ElectionConfig struct {
	Name          string   `json:"name"`
	LeaseDuration Duration `json:"leaseDuration"`
	RenewDeadline Duration `json:"renewDeadline"`
	RetryPeriod   Duration `json:"retryPeriod"`
	JitterFactor  float64  `json:"jitterFactor"`
	OpTimeout     Duration `json:"opTimeout"`
	// Backend elects the leader: "sql" (the lease row; the timings above)
	// or "kubernetes" (a Lease, election.kubernetes, same timings) or
	// "etcd" (etcd's election recipe, election.etcd). Terms are minted in
	// the database either way.
	Backend    string                   `json:"backend"`
	Kubernetes KubernetesElectionConfig `json:"kubernetes"`
	Etcd       EtcdConfig               `json:"etcd"`
	// FastFailover, LockWindow and LockCheckPeriod: the session-lock path
	// (leader.Config).
	FastFailover    bool     `json:"fastFailover"`
	LockWindow      Duration `json:"lockWindow"`
	LockCheckPeriod Duration `json:"lockCheckPeriod"`
}

// Leader returns the election's leader.Config.
func (e ElectionConfig) Leader() leader.Config {
	return leader.Config{
		Name:          e.Name,
		LeaseDuration: e.LeaseDuration.D(),
		RenewDeadline: e.RenewDeadline.D(),
		RetryPeriod:   e.RetryPeriod.D(),
		JitterFactor:  e.JitterFactor,
		OpTimeout:     e.OpTimeout.D(),

		FastFailover:    e.FastFailover,
		LockWindow:      e.LockWindow.D(),
		LockCheckPeriod: e.LockCheckPeriod.D(),
	}
}

// RuntimeConfig tunes the component runtime.
type RuntimeConfig struct {
	// DrainTimeout bounds how long leader components may take to return
	// when a term ends; past it the replica exits (fail-stop).
	DrainTimeout Duration `json:"drainTimeout"`
}

// HeartbeatConfig turns the example heartbeat component on.
type HeartbeatConfig struct {
	// Interval between two fenced Heartbeat writes of the leader; 0 (the
	// default) leaves the component out.
	Interval Duration `json:"interval"`
}

// LogConfig picks the log output.
type LogConfig struct {
	// Format is "console" or "json".
	Format string `json:"format"`
	// Level is error, warn, info, debug, or a logr verbosity 0..10
	// (fx's events show at 4).
	Level string `json:"level"`
}

// Default returns the embedded defaults: SQLite under ./data, the example
// registry and runtime files, HTTP on 127.0.0.1:8080, one replica.
func Default() Config {
	lc := leader.DefaultConfig()
	return Config{
		Database: database.Config{Driver: database.SQLite, DSN: "data/dubbo-admin.db"},
		Store:    StoreConfig{Backend: StoreGORM},
		Registry: SourceConfig{URL: "file://examples/registry", Resync: Duration(5 * 60e9)},
		Engine:   SourceConfig{URL: "file://examples/runtime", Resync: Duration(5 * 60e9)},
		HTTP:     HTTPConfig{Address: "127.0.0.1:8080", ShutdownTimeout: Duration(10e9)},
		Election: ElectionConfig{
			Name:          lc.Name,
			LeaseDuration: Duration(lc.LeaseDuration),
			RenewDeadline: Duration(lc.RenewDeadline),
			RetryPeriod:   Duration(lc.RetryPeriod),
			JitterFactor:  lc.JitterFactor,
			OpTimeout:     Duration(lc.OpTimeout),
			Backend:       ElectionSQL,
			Etcd:          defaultEtcdConfig(),

			FastFailover:    lc.FastFailover,
			LockWindow:      Duration(lc.LockWindow),
			LockCheckPeriod: Duration(lc.LockCheckPeriod),
		},
		Runtime:      RuntimeConfig{DrainTimeout: Duration(5e9)},
		Log:          LogConfig{Format: LogConsole, Level: "info"},
		Replicas:     1,
		ReplicaIndex: -1,
	}
}

// Validate reports the first setting that cannot work, naming it by its
// YAML key. No error carries a database password.
func (c Config) Validate() error {
	if err := c.Database.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	switch c.Store.Backend {
	case StoreGORM:
	case StoreMemory:
		if c.Replicas > 1 {
			return fmt.Errorf("%w: store.backend %q keeps resources in one process and cannot be shared by %d replicas: use %q", ErrInvalidConfig, c.Store.Backend, c.Replicas, StoreGORM)
		}
	default:
		return fmt.Errorf("%w: store.backend %q: must be %q or %q", ErrInvalidConfig, c.Store.Backend, StoreGORM, StoreMemory)
	}
	if err := validateSource("registry", c.Registry, registrySources()); err != nil {
		return err
	}
	if err := validateSource("engine", c.Engine, engineSources()); err != nil {
		return err
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return fmt.Errorf("%w: replicas is %d: must be 1..%d", ErrInvalidConfig, c.Replicas, MaxReplicas)
	}
	if c.ReplicaIndex < -1 || c.ReplicaIndex >= MaxReplicas {
		return fmt.Errorf("%w: replica index is %d: must be 0..%d", ErrInvalidConfig, c.ReplicaIndex, MaxReplicas-1)
	}
	if err := c.validateHTTP(); err != nil {
		return err
	}
	if err := c.Election.Leader().Validate(); err != nil {
		return fmt.Errorf("%w: election: %w", ErrInvalidConfig, err)
	}
	if err := c.Election.validateBackend(); err != nil {
		return err
	}
	if c.Runtime.DrainTimeout <= 0 {
		return fmt.Errorf("%w: runtime.drainTimeout is %v: must be positive", ErrInvalidConfig, c.Runtime.DrainTimeout)
	}
	if c.Heartbeat.Interval < 0 {
		return fmt.Errorf("%w: heartbeat.interval is %v: must not be negative", ErrInvalidConfig, c.Heartbeat.Interval)
	}
	switch c.Log.Format {
	case LogConsole, LogJSON:
	default:
		return fmt.Errorf("%w: log.format %q: must be %q or %q", ErrInvalidConfig, c.Log.Format, LogConsole, LogJSON)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return fmt.Errorf("%w: log.level: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c Config) validateHTTP() error {
	_, port, err := splitAddress(c.HTTP.Address)
	if err != nil {
		return fmt.Errorf("%w: http.address %q: %w", ErrInvalidConfig, c.HTTP.Address, err)
	}
	if c.Replicas > 1 && port == 0 {
		return fmt.Errorf("%w: http.address %q: %d replicas need a fixed base port (replica i listens on port+i), not 0", ErrInvalidConfig, c.HTTP.Address, c.Replicas)
	}
	if last := port + max(c.Replicas, c.ReplicaIndex+1) - 1; port != 0 && last > 65535 {
		return fmt.Errorf("%w: http.address %q: replica ports %d..%d exceed 65535", ErrInvalidConfig, c.HTTP.Address, port, last)
	}
	if c.HTTP.ShutdownTimeout <= 0 {
		return fmt.Errorf("%w: http.shutdownTimeout is %v: must be positive", ErrInvalidConfig, c.HTTP.ShutdownTimeout)
	}
	return nil
}

func validateSource(key string, s SourceConfig, reg source.Registry) error {
	if strings.TrimSpace(s.URL) == "" {
		return fmt.Errorf("%w: %s.url is empty", ErrInvalidConfig, key)
	}
	if _, _, err := reg.Resolve(s.URL); err != nil {
		return fmt.Errorf("%w: %s.url: %w", ErrInvalidConfig, key, err)
	}
	if s.Resync < 0 {
		return fmt.Errorf("%w: %s.resync is %v: must not be negative", ErrInvalidConfig, key, s.Resync)
	}
	return nil
}

// splitAddress parses host:port with a numeric port.
func splitAddress(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: must be a number 0..65535", p)
	}
	return host, port, nil
}

// HTTPAddress is where this replica listens: http.address, with the port
// offset by the replica index when a supervisor started it.
func (c Config) HTTPAddress() string { return c.ReplicaHTTPAddress(c.ReplicaIndex) }

// ReplicaHTTPAddress is where replica i of a supervisor listens: the base
// port plus i (i < 0 means the base address itself).
func (c Config) ReplicaHTTPAddress(i int) string {
	host, port, err := splitAddress(c.HTTP.Address)
	if err != nil || i <= 0 || port == 0 {
		return c.HTTP.Address
	}
	return net.JoinHostPort(host, strconv.Itoa(port+i))
}
