package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// CLI is what the commands take from the process; the zero value uses the
// real process (environment, executable, signals). Tests set the fields
// and run the command in-process with SetArgs, SetOut and SetErr.
type CLI struct {
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Executable is the binary `run --replicas N` re-executes; nil means
	// os.Executable.
	Executable func() (string, error)
	// Signals returns the channel of SIGINT/SIGTERM for `run` and a
	// function that stops the delivery; nil means signal.Notify.
	Signals func() (<-chan os.Signal, func())
}

// NewCommand returns the dubbo-admin command of the real process.
func NewCommand() *cobra.Command { return CLI{}.Command() }

// Command returns the root command: run, leader status, leader release,
// version.
func (c CLI) Command() *cobra.Command {
	root := &cobra.Command{
		Use:           "dubbo-admin",
		Short:         "Dubbo Admin: leader-elected replicas over a shared database",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(c.runCommand(), c.leaderCommand(), versionCommand())
	return root
}

func (c CLI) lookupEnv(name string) (string, bool) {
	if c.LookupEnv != nil {
		return c.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

func (c CLI) executable() (string, error) {
	if c.Executable != nil {
		return c.Executable()
	}
	return os.Executable()
}

func (c CLI) signals() (<-chan os.Signal, func()) {
	if c.Signals != nil {
		return c.Signals()
	}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), VersionString())
			return err
		},
	}
}

// withTimeout bounds a command's database work.
func withTimeout(parent context.Context, cfg Config) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, max(10*cfg.Election.OpTimeout.D(), 10e9))
}
