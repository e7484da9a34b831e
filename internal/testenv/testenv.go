// Package testenv runs the project's ginkgo suites with the profile chosen
// by the Makefile, so that every suite is an ordinary `go test` package.
//
// ADMIN_TEST_LABEL_FILTER is passed to ginkgo as its label filter:
// `make test` sets "!e2e" (the quick profile), `make test-e2e` sets nothing
// (everything). Labels in use: quick, e2e, sqlite, mysql, postgres, zookeeper.
package testenv

import (
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
)

// LabelFilterEnv names the environment variable holding the label filter.
const LabelFilterEnv = "ADMIN_TEST_LABEL_FILTER"

// RunSpecs runs the suite of the calling test package.
func RunSpecs(t *testing.T, description string) {
	t.Helper()
	suite, reporter := ginkgo.GinkgoConfiguration()
	if f := os.Getenv(LabelFilterEnv); f != "" && suite.LabelFilter == "" {
		suite.LabelFilter = f
	}
	ginkgo.RunSpecs(t, description, suite, reporter)
}
