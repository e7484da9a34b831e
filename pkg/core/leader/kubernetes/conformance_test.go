package kubernetes_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/internal/kubeapiserver"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/electortest"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
)

// leaseNameFor maps any election name to a valid Lease name, as an operator
// sets leaseName when the election name is not an object name.
func leaseNameFor(election string) string {
	sum := sha256.Sum256([]byte(election))
	return "election-" + hex.EncodeToString(sum[:10])
}

// candidate is one replica on rc; an invalid name or identity is New's error.
func candidate(rc *rest.Config, election, identity string) (leader.Elector, error) {
	cfg := fastConfig(election)
	cfg.LeaseName = leaseNameFor(election)
	opts := []klease.Option{klease.WithLogger(GinkgoLogr)}
	if identity != "" {
		opts = append(opts, klease.WithIdentity(identity))
	}
	return klease.New(kubeapiserver.GinkgoClient(rc), openEpochs(), cfg, opts...)
}

var _ = Describe("Elector conformance on Kubernetes Leases", Label("kubernetes"), Ordered, func() {
	BeforeAll(startServer)

	electortest.Specs(func() electortest.Backend {
		return electortest.Backend{
			New: func(_ context.Context, election, identity string) (leader.Elector, error) {
				return candidate(server.Config(), election, identity)
			},
			NewCuttable: func(_ context.Context, election string) (leader.Elector, func(), func()) {
				GinkgoHelper()
				proxy, err := faultproxy.Start(server.Addr())
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(proxy.Close)
				via := server.Config()
				via.Host = "https://" + proxy.Addr()
				e, err := candidate(via, election, "")
				Expect(err).NotTo(HaveOccurred())
				return e, proxy.Pause, proxy.Resume
			},
		}
	})
})
