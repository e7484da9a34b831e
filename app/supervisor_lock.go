//go:build unix

package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrSupervisorRunning: another supervisor already runs replicas on the
// same data directory.
var ErrSupervisorRunning = errors.New("another supervisor is running")

// supervisorLockFile is the lock a supervisor holds in its data directory.
const supervisorLockFile = ".dubbo-admin-supervisor.lock"

// LockSupervisor takes the supervisor's lock of dir (an flock, released by
// the kernel when the process dies, however it dies), and writes this
// process's pid into it. A second supervisor on the same directory gets
// ErrSupervisorRunning naming the first one's pid.
func LockSupervisor(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, supervisorLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("supervisor lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w on %s (pid %s): stop it first, or give this one its own --db-dsn and --http-address", ErrSupervisorRunning, dir, pid)
		}
		return nil, fmt.Errorf("supervisor lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
