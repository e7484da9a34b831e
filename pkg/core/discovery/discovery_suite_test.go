package discovery_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestDiscovery(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "Discovery")
}
