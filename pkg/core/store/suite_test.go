package store_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestStore(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "store")
}

var leakBaseline goleak.Option

var _ = BeforeSuite(func() {
	leakBaseline = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(leakBaseline)).To(Succeed(), "goroutines left running by the store suite")
})
