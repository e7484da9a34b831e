package zookeeper

import (
	"context"

	. "github.com/onsi/ginkgo/v2"

	"github.com/apache/dubbo-admin/pkg/core/source/sourcetest"
)

// startTerm starts one term of start and makes sure it ends with the spec,
// even a failed one, before the spec's leak check.
func startTerm(start func(context.Context) error) *sourcetest.Term {
	t := sourcetest.StartTerm(context.Background(), start)
	DeferCleanup(func() { _ = t.Stop() })
	return t
}
