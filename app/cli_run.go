package app

import (
	"context"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
)

func (c CLI) runCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a replica, or --replicas N of them on this machine",
		Long: `Run one replica of Admin on the configured database, registry and engine
(the defaults: SQLite under ./data, examples/registry and examples/runtime).

With --replicas N (N > 1) this process supervises N replica processes of the
same binary on this machine, sharing the database: replica i serves HTTP on
the base port + i. It prints one line per leadership change, forwards
SIGINT/SIGTERM for a graceful stop, and reports a replica that exits.`,
		Args: cobra.NoArgs,
	}
	flags := BindFlags(cmd.Flags(), scopeRun)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := flags.Load(c.lookupEnv)
		if err != nil {
			return err
		}
		log, flush, err := NewLogger(cfg.Log, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer flush()
		if cfg.Replicas > 1 && cfg.ReplicaIndex < 0 {
			return c.supervise(cmd, cfg, log)
		}
		if cfg.ReplicaIndex >= 0 {
			log = log.WithValues("replica", cfg.ReplicaIndex)
		}
		return c.runReplica(cmd.Context(), cfg, log)
	}
	return cmd
}

// waitForDatabase waits for the database to answer (see the package
// function), until ctx ends or a signal arrives.
func (c CLI) waitForDatabase(ctx context.Context, sigs <-chan os.Signal, cfg Config, log logr.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-stop:
		}
	}()
	return waitForDatabase(ctx, cfg.Database, log)
}

// runReplica runs one replica until SIGINT or SIGTERM, then stops it
// gracefully.
func (c CLI) runReplica(ctx context.Context, cfg Config, log logr.Logger) error {
	sigs, stopSignals := c.signals()
	defer stopSignals()
	log.Info("starting replica", "version", Version, "pid", os.Getpid(), "database", cfg.Database.String(),
		"store", cfg.Store.Backend, "registry", redactURL(cfg.Registry.URL), "engine", redactURL(cfg.Engine.URL),
		"election", cfg.Election.Name, "leaseDuration", cfg.Election.LeaseDuration.String())
	if err := checkSQLiteFile(cfg.Database, false); err != nil {
		return err
	}
	if err := c.waitForDatabase(ctx, sigs, cfg, log); err != nil {
		return err
	}
	rep, err := NewReplica(cfg, log)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	err = rep.Start(startCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("start replica: %w", err)
	}
	var sig os.Signal
	select {
	case sig = <-sigs:
	case <-ctx.Done():
	}
	log.Info("stopping replica", "signal", fmt.Sprint(sig), "timeout", rep.StopTimeout().String())
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rep.StopTimeout())
	defer cancel()
	if err := rep.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop replica: %w", err)
	}
	log.Info("replica stopped")
	return nil
}
