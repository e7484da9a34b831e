package leader_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

var _ = Describe("Jittered", func() {
	It("waits at least d and less than d*(1+factor), and exactly d without jitter", func() {
		for range 1000 {
			Expect(leader.Jittered(time.Second, 0.2)).To(And(
				BeNumerically(">=", time.Second), BeNumerically("<", 1200*time.Millisecond)))
		}
		Expect(leader.Jittered(time.Second, 0)).To(Equal(time.Second))
	})
})
