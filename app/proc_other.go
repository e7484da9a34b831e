//go:build !linux

package app

import (
	"os"
	"syscall"
)

// childSysProcAttr: outside Linux there is no parent-death signal; the
// supervisor still stops every replica it started before it returns.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the replica process.
func killGroup(p *os.Process) error { return p.Kill() }
