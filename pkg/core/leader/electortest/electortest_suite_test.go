package electortest_test

import (
	"testing"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestElectorConformance(t *testing.T) {
	testenv.RunSpecs(t, "leader/electortest")
}
