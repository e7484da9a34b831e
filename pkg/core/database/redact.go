package database

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
)

const hidden = "xxxxx"

var keyValuePassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns dsn with its password replaced, for logs, errors and output.
// A DSN it cannot parse is hidden whole rather than risk a leak.
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
		return cfg.FormatDSN()
	default:
		if strings.Contains(dsn, "://") {
			u, err := url.Parse(dsn)
			if err != nil {
				return hidden
			}
			if q := u.Query(); q.Has("password") {
				q.Set("password", hidden)
				u.RawQuery = q.Encode()
			}
			return u.Redacted()
		}
		return keyValuePassword.ReplaceAllString(dsn, "${1}"+hidden)
	}
}

// redactErr strips the password of dsn from err's text, in case a driver
// echoes its input.
func redactErr(err error, dsn string) error {
	if err == nil {
		return nil
	}
	secret := password(dsn)
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), secret, hidden), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }

// Unwrap keeps errors.Is working; the wrapped text is never printed by us.
func (e redactedError) Unwrap() error { return e.err }

func password(dsn string) string {
	if cfg, err := mysql.ParseDSN(dsn); err == nil && cfg.Passwd != "" {
		return cfg.Passwd
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
		if p := u.Query().Get("password"); p != "" {
			return p
		}
	}
	if m := keyValuePassword.FindStringSubmatch(dsn); m != nil {
		return strings.Trim(m[2], "'")
	}
	return ""
}
