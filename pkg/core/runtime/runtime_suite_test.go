package runtime_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestRuntime(t *testing.T) {
	RegisterFailHandler(Fail)
	// Generous bounds: these wait for watches and goroutines, never for time.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultConsistentlyDuration(200 * time.Millisecond)
	testenv.RunSpecs(t, "runtime")
}
