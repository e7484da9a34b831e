package engine_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestEngine(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "Engine")
}
