package app

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/etcd"
)

// ElectionEtcd elects through etcd's election recipe (election.etcd).
const ElectionEtcd = "etcd"

// EtcdConfig is etcd.Config with durations as strings (election.etcd).
type EtcdConfig struct {
	Endpoints []string `json:"endpoints"`
	Prefix    string   `json:"prefix"`
	TTL       Duration `json:"ttl"`
	OpTimeout Duration `json:"opTimeout"`
	CAFile    string   `json:"caFile"`
	CertFile  string   `json:"certFile"`
	KeyFile   string   `json:"keyFile"`
	Username  string   `json:"username"`
	Password  Secret   `json:"password"`
}

// Secret is a string that never prints: String and MarshalJSON show
// "xxxxx" when it is set.
type Secret string

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "xxxxx"
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

func defaultEtcdConfig() EtcdConfig {
	d := etcd.DefaultConfig()
	return EtcdConfig{Prefix: d.Prefix, TTL: Duration(d.TTL), OpTimeout: Duration(d.OpTimeout)}
}

// Etcd returns the etcd backend's configuration.
func (e EtcdConfig) Etcd() etcd.Config {
	return etcd.Config{
		Endpoints: e.Endpoints, Prefix: e.Prefix, TTL: e.TTL.D(), OpTimeout: e.OpTimeout.D(),
		CAFile: e.CAFile, CertFile: e.CertFile, KeyFile: e.KeyFile,
		Username: e.Username, Password: string(e.Password),
	}
}

// validateEtcd checks election.etcd.
func (e ElectionConfig) validateEtcd() error {
	if err := e.Etcd.Etcd().Validate(); err != nil {
		return fmt.Errorf("%w: election: %w", ErrInvalidConfig, err)
	}
	return nil
}

// listField is a comma-separated list setting.
func listField(key, env, flag, scope, usage string, p func(*Config) *[]string) field {
	return field{key: key, env: env, flag: flag, kind: "strings", scope: scope, usage: usage,
		set: func(c *Config, s string) error {
			var out []string
			for _, v := range strings.Split(s, ",") {
				if v = strings.TrimSpace(v); v != "" {
					out = append(out, v)
				}
			}
			*p(c) = out
			return nil
		},
		get: func(c Config) string { return strings.Join(*p(&c), ",") }}
}

// etcdFields are the settings of the etcd backend. The password has no flag
// (flags show in ps): set it in the file or ADMIN_ELECTION_ETCD_PASSWORD.
func etcdFields() []field {
	e := func(c *Config) *EtcdConfig { return &c.Election.Etcd }
	password := strField("election.etcd.password", "ADMIN_ELECTION_ETCD_PASSWORD", "", scopeAll,
		"etcd password", func(c *Config) *string { return (*string)(&e(c).Password) })
	password.get = func(c Config) string { return e(&c).Password.String() }
	return []field{
		listField("election.etcd.endpoints", "ADMIN_ELECTION_ETCD_ENDPOINTS", "etcd-endpoints", scopeAll,
			"etcd members' client URLs, comma-separated (http://host:2379)", func(c *Config) *[]string { return &e(c).Endpoints }),
		strField("election.etcd.prefix", "ADMIN_ELECTION_ETCD_PREFIX", "etcd-prefix", scopeAll,
			"etcd key prefix of the elections", func(c *Config) *string { return &e(c).Prefix }),
		durField("election.etcd.ttl", "ADMIN_ELECTION_ETCD_TTL", "etcd-ttl", scopeRun,
			"etcd session TTL, whole seconds (a crashed leader is replaced after about this long)", func(c *Config) *Duration { return &e(c).TTL }),
		durField("election.etcd.opTimeout", "ADMIN_ELECTION_ETCD_OP_TIMEOUT", "etcd-op-timeout", scopeAll,
			"timeout of each etcd request (at most ttl/3)", func(c *Config) *Duration { return &e(c).OpTimeout }),
		strField("election.etcd.caFile", "ADMIN_ELECTION_ETCD_CA_FILE", "etcd-ca-file", scopeAll,
			"etcd TLS: CA of the members' certificates", func(c *Config) *string { return &e(c).CAFile }),
		strField("election.etcd.certFile", "ADMIN_ELECTION_ETCD_CERT_FILE", "etcd-cert-file", scopeAll,
			"etcd TLS: client certificate", func(c *Config) *string { return &e(c).CertFile }),
		strField("election.etcd.keyFile", "ADMIN_ELECTION_ETCD_KEY_FILE", "etcd-key-file", scopeAll,
			"etcd TLS: client key", func(c *Config) *string { return &e(c).KeyFile }),
		strField("election.etcd.username", "ADMIN_ELECTION_ETCD_USERNAME", "etcd-username", scopeAll,
			"etcd user (with auth enabled)", func(c *Config) *string { return &e(c).Username }),
		password,
	}
}

// newEtcdElector is the etcd backend of the election; its owner closes it.
func newEtcdElector(cfg Config, epochs *leader.Epochs, m *Metrics, log logr.Logger) (*etcd.Elector, error) {
	opts := []etcd.Option{etcd.WithLogger(log.WithName("leader"))}
	if m != nil {
		opts = append(opts, etcd.WithObserver(m))
	}
	return etcd.New(cfg.Election.Name, cfg.Election.Etcd.Etcd(), epochs, opts...)
}

// timings says how the election is timed, for the start-up lines: the
// lease duration, or the etcd session TTL.
func (e ElectionConfig) timings() string {
	if e.Backend == ElectionEtcd {
		return "etcd, ttl " + e.Etcd.TTL.String()
	}
	return e.Backend + ", lease " + e.LeaseDuration.String()
}
