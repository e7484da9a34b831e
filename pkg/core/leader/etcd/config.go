package etcd

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Config is how the etcd backend reaches etcd and the timings of its
// sessions. Every error of Validate names the field (as in YAML) and the
// rule it breaks. The password is never printed: String, GoString and the
// errors show "xxxxx" in its place.
type Config struct {
	// Endpoints are the members' client URLs (http://host:2379, or
	// https:// with TLS) or bare host:port.
	Endpoints []string `json:"endpoints" yaml:"endpoints"`
	// Prefix is the key prefix of Admin's elections; election name N lives
	// under Prefix/N/ (N path-escaped, so "a" and "a/b" never share keys).
	Prefix string `json:"prefix" yaml:"prefix"`
	// TTL is the session's lease time to live, in whole seconds: a crashed
	// leader is replaced about TTL after its last keep-alive. The leader's
	// term ends 2/3 TTL after the last keep-alive it sent that etcd
	// acknowledged; keep-alives are sent every TTL/6.
	TTL time.Duration `json:"ttl" yaml:"ttl"`
	// OpTimeout bounds each request to etcd (and the dial). It must be at
	// most TTL/3.
	OpTimeout time.Duration `json:"opTimeout" yaml:"opTimeout"`
	// TLS: client certificate and key (both or neither) and the CA that
	// signed the members' certificates; any one of them turns TLS on.
	CAFile   string `json:"caFile" yaml:"caFile"`
	CertFile string `json:"certFile" yaml:"certFile"`
	KeyFile  string `json:"keyFile" yaml:"keyFile"`
	// Username and Password authenticate to etcd when auth is enabled.
	Username string `json:"username" yaml:"username"`
	Password string `json:"password" yaml:"password"`
}

// Defaults of the fields left zero.
const (
	DefaultPrefix    = "/dubbo-admin/election"
	DefaultTTL       = 10 * time.Second
	DefaultOpTimeout = time.Second
	// MinTTL is the shortest TTL accepted; etcd itself raises shorter
	// leases to about 1.5 election timeouts (2 s with its defaults).
	MinTTL = 2 * time.Second
)

const redacted = "xxxxx"

// DefaultConfig returns the defaults with no endpoint.
func DefaultConfig() Config {
	return Config{Prefix: DefaultPrefix, TTL: DefaultTTL, OpTimeout: DefaultOpTimeout}
}

// WithDefaults fills the zero fields (prefix, TTL, op timeout).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = d.OpTimeout
	}
	return c
}

// Validate checks every field; the errors wrap leader.ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: etcd.%s %s", leader.ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	if len(c.Endpoints) == 0 {
		return bad("endpoints", "is empty: name at least one member, e.g. http://127.0.0.1:2379")
	}
	for i, ep := range c.Endpoints {
		if err := checkEndpoint(ep, c.tlsEnabled()); err != nil {
			return bad(fmt.Sprintf("endpoints[%d]", i), "%q: %v", redactEndpoint(ep), err)
		}
	}
	switch {
	case c.Prefix == "":
		return bad("prefix", "is empty: e.g. %s", DefaultPrefix)
	case !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") && c.Prefix != "/":
		return bad("prefix", "%q: must start with / and not end with /", c.Prefix)
	case c.Prefix == "/":
		return bad("prefix", "is /: give Admin's elections a prefix of their own, e.g. %s", DefaultPrefix)
	}
	if c.TTL < MinTTL || c.TTL%time.Second != 0 {
		return bad("ttl", "is %v: must be a whole number of seconds, at least %v", c.TTL, MinTTL)
	}
	if c.OpTimeout < time.Millisecond || c.OpTimeout > c.TTL/3 {
		return bad("opTimeout", "is %v: must be between 1ms and ttl/3 (%v)", c.OpTimeout, c.TTL/3)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return bad("certFile", "and etcd.keyFile: give both or neither")
	}
	for _, f := range []struct{ field, path string }{{"caFile", c.CAFile}, {"certFile", c.CertFile}, {"keyFile", c.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return bad(f.field, "%q: %v", f.path, err)
		}
	}
	if c.Password != "" && c.Username == "" {
		return bad("password", "is set without etcd.username")
	}
	return nil
}

func checkEndpoint(ep string, tlsOn bool) error {
	if ep == "" {
		return fmt.Errorf("is empty")
	}
	if !strings.Contains(ep, "://") {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return fmt.Errorf("not a URL or host:port: %w", err)
		}
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q: must be http or https", u.Scheme)
	case u.Host == "":
		return fmt.Errorf("has no host")
	case u.User != nil:
		return fmt.Errorf("must not carry credentials: use etcd.username and etcd.password")
	case u.Scheme == "https" && !tlsOn:
		return fmt.Errorf("is https but no TLS file is set (etcd.caFile)")
	}
	return nil
}

// redactEndpoint hides a password someone put into an endpoint URL.
func redactEndpoint(ep string) string {
	if u, err := url.Parse(ep); err == nil && u.User != nil {
		return u.Redacted()
	}
	return ep
}

func (c Config) tlsEnabled() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// tlsConfig loads the TLS files; nil when TLS is off.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.tlsEnabled() {
		return nil, nil
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: etcd.caFile: %w", leader.ErrInvalidConfig, err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: etcd.caFile %q: no PEM certificate in it", leader.ErrInvalidConfig, c.CAFile)
		}
	}
	info := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.CAFile}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: etcd TLS files: %w", leader.ErrInvalidConfig, err)
	}
	return tc, nil
}

// Redacted returns c with the password replaced by "xxxxx" (when set).
func (c Config) Redacted() Config {
	if c.Password != "" {
		c.Password = redacted
	}
	eps := make([]string, len(c.Endpoints))
	for i, ep := range c.Endpoints {
		eps[i] = redactEndpoint(ep)
	}
	c.Endpoints = eps
	return c
}

// String describes c without the password.
func (c Config) String() string {
	r := c.Redacted()
	return fmt.Sprintf("etcd{endpoints: %s, prefix: %s, ttl: %v, opTimeout: %v, tls: %t, username: %q, password: %q}",
		strings.Join(r.Endpoints, ","), r.Prefix, r.TTL, r.OpTimeout, r.tlsEnabled(), r.Username, r.Password)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }
