// Package replicas_test runs several dubbo-admin replicas against one
// database, in this process and as separate processes, injects faults
// (SIGKILL, SIGSTOP/SIGCONT, SIGTERM, a paused database connection, a
// database restart, a SQLite writer killed mid-transaction) and checks after
// every round that no two terms ran leader components at once, that no
// write of an old term landed after a newer term began, that the store
// equals the source, and that a leader comes back.
//
// Labels: the in-process smoke on SQLite is "quick"; every fault suite is
// "e2e" (make test-e2e). Dialect labels: sqlite, mysql, postgres.
package replicas_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestReplicas(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "test/replicas")
}
