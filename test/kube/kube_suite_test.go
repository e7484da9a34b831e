// Package kube_test checks deploy/kubernetes against a real kube-apiserver
// (internal/kubeapiserver): the manifests are accepted by a server-side
// dry-run apply, and the Role they grant is exactly what the Lease election
// and the Engine's pod source need.
package kube_test

import (
	"testing"

	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/internal/testenv"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
)

const suite = "test/kube"

var (
	server *kubeapiserver.Server
	tdb    *dbtest.DB
)

func TestKube(t *testing.T) {
	testenv.RunSpecs(t, "deploy/kubernetes on a real kube-apiserver")
}

func startServer() {
	server = kubeapiserver.Ginkgo(suite)
	tdb = dbtest.Ginkgo(suite, database.SQLite)
}

func electionVerbs() []string { return klease.Verbs }
