package app

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// The supervisor's replicas never carry the DSN (and its password) in
// their arguments: it travels in their environment.
func TestReplicaArgsKeepTheDSNOutOfTheCommandLine(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	BindFlags(fs, scopeRun)
	dsn := "root:s3cret@tcp(127.0.0.1:3306)/admin"
	if err := fs.Parse([]string{"--replicas=3", "--" + dsnFlag + "=" + dsn, "--election-name=e"}); err != nil {
		t.Fatal(err)
	}
	args, env := replicaArgs(fs)
	for _, a := range args {
		if containsSecret(a) {
			t.Fatalf("replica argument %q carries the DSN", a)
		}
	}
	if len(env) != 1 || env[0] != dsnEnv+"="+dsn {
		t.Fatalf("replica environment = %q, want the DSN in %s", env, dsnEnv)
	}
	if len(args) != 1 || args[0] != "--election-name=e" {
		t.Fatalf("replica arguments = %q, want only --election-name=e", args)
	}
}

func containsSecret(s string) bool { return strings.Contains(s, "s3cret") }
