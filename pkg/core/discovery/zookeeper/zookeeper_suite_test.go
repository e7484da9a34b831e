package zookeeper

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestZooKeeper(t *testing.T) {
	RegisterFailHandler(Fail)
	testenv.RunSpecs(t, "Discovery on ZooKeeper")
}
