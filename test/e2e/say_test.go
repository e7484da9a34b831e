package e2e_test

import (
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/types"
)

// gbytesSay matches the supervisor's stdout from where the last match ended.
func gbytesSay(re string) types.GomegaMatcher { return gbytes.Say(re) }
