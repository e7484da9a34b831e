package dbtest

import (
	"fmt"
	"os"
	"sync"
)

// RanLogEnv names the file that collects one line per suite and dialect
// whose specs ran (make test prints it beside the skipped ones).
const RanLogEnv = "ADMIN_TEST_RAN_LOG"

var ranLogMu sync.Mutex

// ReportRan records that suite's specs ran on dialect (at addr, empty for
// SQLite), once per line.
func ReportRan(suite, dialect, addr string) {
	where := "a temporary file"
	if addr != "" {
		where = addr
	}
	appendOnce(os.Getenv(RanLogEnv), &ranLogMu, fmt.Sprintf("%s (%s)\t%s", dialect, where, suite))
}
