//go:build linux

package app

import (
	"os"
	"syscall"
)

// childSysProcAttr puts a replica in a process group of its own (so that a
// terminal's Ctrl-C reaches the supervisor only, which forwards it) and
// asks the kernel to send it SIGTERM if the supervisor dies, so that no
// replica outlives it even after a kill -9 of the supervisor.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// killGroup sends SIGKILL to the replica's process group.
func killGroup(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGKILL) }
