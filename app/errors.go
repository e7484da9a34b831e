package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// What a user sees of a failure is one line naming the problem and the
// setting: never the dependency-injection chain that led to it, never a
// path into the source tree.

// assemblyError reduces an error of building the replica's fx application
// to the error its failing constructor returned.
func assemblyError(err error) error {
	if err == nil {
		return nil
	}
	return dig.RootCause(err)
}

// fxLogger is the runtime's fx logger with fx's failures at V(4) like its
// other events: the replica returns every failure as one error, so logging
// them here too would print the same problem twice, with fx's internals.
func fxLogger(log logr.Logger) fx.Option {
	return runtime.FxLogger(log.WithSink(quietErrors{log.GetSink()}))
}

// quietErrors logs Error lines as V(4) Info lines.
type quietErrors struct{ logr.LogSink }

func (q quietErrors) Error(err error, msg string, kv ...any) {
	if q.Enabled(4) {
		q.LogSink.Info(4, msg, append(kv, "error", err)...)
	}
}

func (q quietErrors) WithValues(kv ...any) logr.LogSink {
	return quietErrors{q.LogSink.WithValues(kv...)}
}

func (q quietErrors) WithName(name string) logr.LogSink { return quietErrors{q.LogSink.WithName(name)} }

// checkSQLiteFile refuses an SQLite DSN that names a directory (SQLite
// itself only says "out of memory (14)") and, when mustExist (the leader
// commands read a database, they never create one), a file that does not
// exist (ErrNoDatabase).
func checkSQLiteFile(cfg database.Config, mustExist bool) error {
	if cfg.Driver != database.SQLite {
		return nil
	}
	file := sqliteFile(cfg.DSN)
	fi, err := os.Stat(file)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%w: database.dsn %q is a directory: name the database file in it, e.g. %q",
			ErrInvalidConfig, cfg.DSN, strings.TrimSuffix(file, "/")+"/dubbo-admin.db")
	case mustExist && errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist: no replica has used it (start one with `dubbo-admin run`)", ErrNoDatabase, cfg)
	}
	return nil
}

// transientDatabaseError reports whether opening the database failed in a
// way that waiting can fix: the server does not answer yet (refused, no
// route, DNS, timeout). A wrong password, an unknown database or a bad DSN
// are answers, and waiting does not change them.
func transientDatabaseError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(err, database.ErrConfig), errors.Is(err, ErrInvalidConfig):
		return false
	case errors.As(err, &op), errors.As(err, &dns),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "the database system is starting up") || strings.Contains(msg, "i/o timeout")
}

// databaseBackoff is the wait between two attempts to reach a database
// that does not answer yet.
var databaseBackoff = struct{ initial, max time.Duration }{time.Second, 30 * time.Second}

// waitForDatabase returns once the database answers, retrying with capped
// exponential backoff while it does not answer yet, so that a replica
// started before its database (as Kubernetes may) comes up when the
// database does. Any other failure is returned at once. One WARN line per
// change of cause; ctx ends the wait.
func waitForDatabase(ctx context.Context, cfg database.Config, log logr.Logger) error {
	delay, lastCause, since := databaseBackoff.initial, "", time.Now()
	for attempt := 1; ; attempt++ {
		openCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		db, err := database.Open(openCtx, cfg)
		cancel()
		if err == nil {
			if lastCause != "" {
				log.Info("database answers", "database", cfg.String(), "attempts", attempt, "waited", time.Since(since).Round(time.Millisecond).String())
			}
			return database.Close(db)
		}
		if !transientDatabaseError(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("stopped while waiting for %s: %w", cfg, err)
			}
			return fmt.Errorf("database.dsn: %w", err)
		}
		if cause := err.Error(); cause != lastCause {
			log.Info("WARNING: the database does not answer yet; retrying with backoff", "database", cfg.String(), "error", cause, "retryIn", delay.String())
			lastCause = cause
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("stopped while waiting for %s: %w", cfg, err)
		case <-t.C:
		}
		delay = min(2*delay, databaseBackoff.max)
	}
}
