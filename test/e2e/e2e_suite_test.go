// Package e2e_test runs the dubbo-admin binary as a user would: several
// replica processes on one machine, killed and stopped with signals. Its
// specs carry Label("e2e"); the quick profile (ADMIN_TEST_LABEL_FILTER='!e2e')
// skips them.
package e2e_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "e2e")
}
