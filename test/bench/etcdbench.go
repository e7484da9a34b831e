package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/test/harness"
)

// Rows of the etcd election backend: one cluster, its store and terms on
// MariaDB, so its numbers stand in the MariaDB column.
const (
	rowEtcdCrash    = "etcd-crash"
	rowEtcdHandover = "etcd-handover"
)

func etcdRows() []row {
	ttl := harness.EtcdTTL
	return []row{
		{key: rowEtcdCrash, label: fmt.Sprintf("etcd backend, TTL %s (store and terms on MariaDB): crash failover (kill -9 → new leader's components running): p50 / p99 / max", ttl),
			floor: fmt.Sprintf("TTL %s", ttl), only: database.MySQL, phase: phaseElection},
		{key: rowEtcdHandover, label: fmt.Sprintf("etcd backend, TTL %s: graceful handover (SIGTERM → new leader's components running): p50 / p99", ttl),
			floor: "—", only: database.MySQL, phase: phaseElection},
	}
}

// etcdTimings measures crash failover and graceful handover of 3 replica
// processes electing through a throwaway etcd member on loopback.
func (b *bench) etcdTimings(ctx context.Context) error {
	if ok, why := etcdserver.Available(); !ok {
		b.set(rowEtcdCrash, database.MySQL, "skipped: "+why)
		b.set(rowEtcdHandover, database.MySQL, "skipped: "+why)
		return nil
	}
	dir := filepath.Join(b.tmp, "etcd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	srv, err := etcdserver.Start(ctx, dir)
	if err != nil {
		return err
	}
	defer srv.Close()
	db, drop, err := b.provision(ctx, database.MySQL)
	if err != nil {
		return err
	}
	defer drop()
	src, err := harness.NewSource(filepath.Join(dir, "source"))
	if err == nil {
		err = src.Put("instances.yaml", harness.Instances("bench", "app", 20)...)
	}
	if err != nil {
		return err
	}
	p, err := harness.StartProcesses(ctx, 3, harness.ProcessConfig{Binary: b.binary, Database: db, Source: src, Dir: dir,
		Etcd: &harness.EtcdElection{Addr: srv.Addr()}})
	if err != nil {
		return err
	}
	defer p.Close()
	// failoverRounds waits up to 3 lease durations for a settled cluster
	// and strikes at a random phase of two retry periods: the TTL and the
	// keep-alive interval here.
	tm := leader.Config{Name: harness.Election, LeaseDuration: harness.EtcdTTL, RetryPeriod: harness.EtcdTTL / 6}
	crash, err := failoverRounds(ctx, p, b.rounds, tm, false)
	if err != nil {
		return fmt.Errorf("etcd crash failover after %d rounds: %w", len(crash.took), err)
	}
	b.set(rowEtcdCrash, database.MySQL, p50p99max(crash.took))
	handover, err := failoverRounds(ctx, p, b.rounds, tm, true)
	if err != nil {
		return fmt.Errorf("etcd graceful handover after %d rounds: %w", len(handover.took), err)
	}
	b.set(rowEtcdHandover, database.MySQL, p50p99(handover.took))
	return nil
}
