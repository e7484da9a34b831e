package leader_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestLeader(t *testing.T) {
	RegisterFailHandler(Fail)
	// Generous bounds: these wait for watches and goroutines, never for time.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultConsistentlyDuration(200 * time.Millisecond)
	testenv.RunSpecs(t, "leader")
}

var leakBaseline []goleak.Option

var _ = BeforeSuite(func() {
	leakBaseline = []goleak.Option{goleak.IgnoreCurrent()}
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(leakBaseline...)).To(Succeed())
})
