// Package testenv runs the project's ginkgo suites with the profile chosen
// by the Makefile, so that every suite is an ordinary `go test` package.
//
// ADMIN_TEST_LABEL_FILTER is passed to ginkgo as its label filter:
// `make test` sets "!e2e" (the quick profile), `make test-e2e` sets "e2e"
// (only what the quick profile leaves out; CI runs both). Labels in use: quick, e2e, sqlite, mysql, postgres, zookeeper, browser. etcd.
package testenv

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// LabelFilterEnv names the environment variable holding the label filter.
const LabelFilterEnv = "ADMIN_TEST_LABEL_FILTER"

// Default bounds of Eventually and Consistently. They are generous on
// purpose: they only decide how long a broken build takes to fail, never
// whether a correct one passes, so a loaded 2-core CI machine does not flake.
const (
	EventuallyTimeout    = 30 * time.Second
	ConsistentlyDuration = 200 * time.Millisecond
)

// RunSpecs runs the suite of the calling test package, with gomega wired to
// ginkgo and the default bounds above.
func RunSpecs(t *testing.T, description string) {
	t.Helper()
	gomega.RegisterFailHandler(ginkgo.Fail)
	gomega.SetDefaultEventuallyTimeout(EventuallyTimeout)
	gomega.SetDefaultConsistentlyDuration(ConsistentlyDuration)
	suite, reporter := ginkgo.GinkgoConfiguration()
	if f := os.Getenv(LabelFilterEnv); f != "" && suite.LabelFilter == "" {
		suite.LabelFilter = f
	}
	ginkgo.RunSpecs(t, description, suite, reporter)
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// throwaway server a suite starts.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
