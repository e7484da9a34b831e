package etcd_test

import (
	"testing"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestEtcd(t *testing.T) {
	testenv.RunSpecs(t, "leader/etcd")
}
