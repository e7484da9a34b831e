package database

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
)

const hidden = "xxxxx"

// isSecretKey reports whether a DSN parameter holds a secret: every key
// that ends in "password" (password, sslpassword, ...) or "passfile", in
// any case.
func isSecretKey(key string) bool {
	key = strings.ToLower(key)
	return strings.HasSuffix(key, "password") || strings.HasSuffix(key, "passfile")
}

// keyValueSecret matches one secret parameter of a libpq key=value DSN: a
// whole key (at the start or after white space) ending in password or
// passfile, and its value, single-quoted (backslash escapes) or bare.
var keyValueSecret = regexp.MustCompile(`(?i)((?:^|\s)[\w.-]*(?:password|passfile)\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// isPostgresURL is pgx's own test: anything else is a key=value DSN, even
// if a value holds "://".
func isPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns dsn with every secret replaced, for logs, errors and
// output: the password (MySQL user:pass@, URL userinfo) and every parameter
// whose key ends in password or passfile (sslpassword, passfile, ...), in
// MySQL DSNs, PostgreSQL URLs and key=value DSNs alike. A DSN it cannot
// parse is hidden whole rather than risk a leak.
func Redact(driver, dsn string) string {
	switch driver {
	case SQLite:
		return dsn
	case MySQL:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return hidden
		}
		if cfg.Passwd != "" {
			cfg.Passwd = hidden
		}
		for k := range cfg.Params {
			if isSecretKey(k) {
				cfg.Params[k] = hidden
			}
		}
		return cfg.FormatDSN()
	default:
		if !isPostgresURL(dsn) {
			return keyValueSecret.ReplaceAllString(dsn, "${1}"+hidden)
		}
		u, err := url.Parse(dsn)
		if err != nil {
			return hidden
		}
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			if key, ok := secretQueryKey(part); ok {
				parts[i] = key + "=" + hidden
			}
		}
		u.RawQuery = strings.Join(parts, "&")
		return u.Redacted()
	}
}

// secretQueryKey returns the (still escaped) key of one key=value part of
// a URL query and whether it names a secret. A key that does not unescape
// is treated as a secret.
func secretQueryKey(part string) (string, bool) {
	key, _, _ := strings.Cut(part, "=")
	plain, err := url.QueryUnescape(key)
	return key, err != nil || isSecretKey(plain)
}

// redactErr strips every secret of dsn from err's text, in case a driver
// echoes its input.
func redactErr(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, secret := range secrets(dsn) {
		msg = strings.ReplaceAll(msg, secret, hidden)
	}
	if msg == err.Error() {
		return err
	}
	return redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }

// Unwrap keeps errors.Is working; the wrapped text is never printed by us.
func (e redactedError) Unwrap() error { return e.err }

// secrets returns every secret value dsn holds, whichever syntax it is in.
func secrets(dsn string) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	if cfg, err := mysql.ParseDSN(dsn); err == nil {
		add(cfg.Passwd)
		for k, v := range cfg.Params {
			if isSecretKey(k) {
				add(v)
			}
		}
	}
	if u, err := url.Parse(dsn); err == nil {
		if u.User != nil {
			p, _ := u.User.Password()
			add(p)
		}
		for k, vs := range u.Query() {
			if isSecretKey(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	for _, m := range keyValueSecret.FindAllStringSubmatch(dsn, -1) {
		v := m[2]
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(strings.ReplaceAll(v[1:len(v)-1], `\'`, `'`), `\\`, `\`)
		}
		add(v)
	}
	return out
}
