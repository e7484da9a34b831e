package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/etcd"
)

// withEtcdElection runs fn on an etcd elector of the configured election
// (prepared: connected, credentials checked), with the epochs of the
// configured database, which hold the terms.
func withEtcdElection(ctx context.Context, cfg Config, fn func(e *etcd.Elector) error) error {
	db, err := database.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer database.Close(db)
	epochs, err := leader.NewEpochs(db)
	if err != nil {
		return err
	}
	e, err := etcd.New(cfg.Election.Name, cfg.Election.Etcd.Etcd(), epochs, etcd.WithLogger(logr.Discard()))
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Prepare(ctx); err != nil {
		return err
	}
	return fn(e)
}

// etcdStatus reads the etcd election for `leader status`.
func etcdStatus(ctx context.Context, cfg Config) (LeaseStatus, error) {
	var st LeaseStatus
	err := withEtcdElection(ctx, cfg, func(e *etcd.Elector) error {
		rec, err := e.Leader(ctx)
		if err != nil {
			return err
		}
		st = leaseStatus(cfg, rec, true)
		if rec.Holder == "" {
			st.State = "none"
		}
		st.Backend, st.Token, st.Candidates = rec.Backend, rec.Token, rec.Candidates
		st.Etcd = strings.Join(cfg.Election.Etcd.Etcd().Redacted().Endpoints, ",")
		return nil
	})
	return st, err
}

// etcdRelease deletes the etcd leader's key for `leader release --force`.
func etcdRelease(ctx context.Context, cfg Config, out io.Writer) error {
	return withEtcdElection(ctx, cfg, func(e *etcd.Elector) error {
		before, err := e.ForceRelease(ctx)
		if err != nil {
			return err
		}
		if before.Holder == "" {
			_, err = fmt.Fprintf(out, "etcd election %q has no leader: nothing to release\n", cfg.Election.Name)
			return err
		}
		_, err = fmt.Fprintf(out, "deleted the etcd leader key of %q held by %s (term %d, %s); the next candidate leads at once\n",
			cfg.Election.Name, before.Holder, before.Term, before.Token)
		return err
	})
}
