package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// supervisorDir is the directory whose lock keeps a second supervisor
// away: the SQLite file's, or, on a database server, one per base HTTP
// port of this machine.
func supervisorDir(cfg Config) string {
	if cfg.Database.Driver == database.SQLite {
		return filepath.Dir(sqliteFile(cfg.Database.DSN))
	}
	_, port, _ := splitAddress(cfg.HTTP.Address)
	return filepath.Join(os.TempDir(), "dubbo-admin-"+strconv.Itoa(port))
}

// supervise runs `run --replicas N`: N replica processes of this binary
// with the same flags and environment.
func (c CLI) supervise(cmd *cobra.Command, cfg Config, log logr.Logger) error {
	exe, err := c.executable()
	if err != nil {
		return fmt.Errorf("find this binary to start the replicas: %w", err)
	}
	args, env := replicaArgs(cmd.Flags())
	unlock, err := LockSupervisor(supervisorDir(cfg))
	if err != nil {
		return err
	}
	defer unlock()
	sigs, stopSignals := c.signals()
	defer stopSignals()
	out := cmd.OutOrStdout()
	sup := &Supervisor{
		Executable: exe,
		Args:       append([]string{"run"}, args...),
		Env:        append(os.Environ(), env...),
		Replicas:   cfg.Replicas,
		Address:    cfg.ReplicaHTTPAddress,
		Out:        out,
		ChildOut:   cmd.ErrOrStderr(),
		ChildErr:   cmd.ErrOrStderr(),
		Poll:       min(max(cfg.Election.RetryPeriod.D()/2, 50*time.Millisecond), 500*time.Millisecond),
		// A replica's own stop is bounded by stopTimeout; past it (and a
		// margin for its start-up), it is killed.
		StopTimeout: stopTimeout(cfg) + 5*time.Second,
		// A replica that exits is started again: 1s, 2s, 4s... up to 30s
		// between quick exits.
		Restart:        true,
		RestartBackoff: runtime.Backoff{Initial: time.Second, Max: 30 * time.Second, Factor: 2},
		Log:            log.WithName("supervisor"),
	}
	fmt.Fprintf(out, "dubbo-admin %s: %d replicas sharing %s (election %q, %s)\n",
		Version, cfg.Replicas, cfg.Database, cfg.Election.Name, cfg.Election.timings())
	fmt.Fprintf(out, "each replica serves /api/v1/leader /api/v1/status /healthz /readyz /metrics /api/v1/resources/{kind}[/{key}]\n")
	fmt.Fprintf(out, "kill -9 the leader's pid to watch another replica take over (a replica that exits is restarted with backoff); Ctrl-C stops them all\n")
	return sup.Run(cmd.Context(), sigs)
}

// replicaArgs turns the flags given to the supervisor into its replicas'
// arguments. The DSN, which may hold a password, goes into their
// environment instead, so that no replica shows it in its command line
// (ps). The environment ranks below flags and above the file, as the flag
// did, so the replicas load the same configuration.
func replicaArgs(fs *pflag.FlagSet) (args, env []string) {
	fs.Visit(func(f *pflag.Flag) {
		switch f.Name {
		case "replicas", replicaIndexFlag:
		case dsnFlag:
			env = append(env, dsnEnv+"="+f.Value.String())
		default:
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	return args, env
}

// The DSN's flag and variable (config_fields.go).
const (
	dsnFlag = "db-dsn"
	dsnEnv  = "ADMIN_DATABASE_DSN"
)
