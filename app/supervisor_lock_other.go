//go:build !unix

package app

import "errors"

// ErrSupervisorRunning: another supervisor already runs replicas on the
// same data directory.
var ErrSupervisorRunning = errors.New("another supervisor is running")

// LockSupervisor takes no lock outside Unix.
func LockSupervisor(string) (func(), error) { return func() {}, nil }
