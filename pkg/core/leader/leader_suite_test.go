package leader_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestLeader(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "leader")
}

var leakBaseline []goleak.Option

var _ = BeforeSuite(func() {
	leakBaseline = []goleak.Option{goleak.IgnoreCurrent()}
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(leakBaseline...)).To(Succeed())
})
