// Package console_test opens the cluster page (app/web) in headless
// Chromium (internal/browser) on a follower of three replica processes and
// watches it follow a failover. It runs in `make test`; where Chromium is
// absent it records a skip (scripts/install-chromium.sh installs it), and
// under ADMIN_TEST_STRICT=1 it fails instead.
package console_test

import (
	"testing"

	"github.com/apache/dubbo-admin/internal/testenv"
)

func TestConsole(t *testing.T) {
	testenv.RunSpecs(t, "console")
}
