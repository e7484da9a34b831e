package membership_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestMembership(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "membership")
}

var leakBaseline []goleak.Option

var _ = BeforeSuite(func() {
	leakBaseline = []goleak.Option{goleak.IgnoreCurrent()}
})

var _ = AfterSuite(func() {
	Eventually(func() error { return goleak.Find(leakBaseline...) }).Should(Succeed())
})
