// Package pgbouncer runs a throwaway PgBouncer (Debian's pgbouncer package,
// scripts/install-pgbouncer.sh) on loopback in front of a PostgreSQL server,
// in transaction mode, for the specs of what a pooler does to session
// locks.
package pgbouncer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Server is one PgBouncer process.
type Server struct {
	cmd  *exec.Cmd
	port int
	done chan struct{}
	once sync.Once
}

// binary is where Debian's package puts pgbouncer.
func binary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", errors.New("pgbouncer is not installed (run scripts/install-pgbouncer.sh)")
}

// Available reports whether pgbouncer is installed, and why not.
func Available() (bool, string) {
	if _, err := binary(); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// Start runs PgBouncer in dir (its config and log) on a free loopback port,
// forwarding every database to target (host:port) as user, in
// transaction mode with poolSize server connections per database. A root
// caller runs it as user postgres (PgBouncer refuses root).
func Start(ctx context.Context, dir, target, dbUser string, poolSize int) (*Server, error) {
	bin, err := binary()
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, fmt.Errorf("pgbouncer: target %q: %w", target, err)
	}
	free, err := freePort()
	if err != nil {
		return nil, err
	}
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%s user=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = %d
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,idle_in_transaction_session_timeout
server_reset_query =
logfile = %s
`, host, port, dbUser, free, poolSize, filepath.Join(dir, "pgbouncer.log"))
	conf := filepath.Join(dir, "pgbouncer.ini")
	if err := os.WriteFile(conf, []byte(ini), 0o644); err != nil {
		return nil, fmt.Errorf("pgbouncer: %w", err)
	}
	args := []string{conf}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgbouncer: running as root needs user postgres: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chmod(dir, 0o777); err != nil {
			return nil, fmt.Errorf("pgbouncer: %w", err)
		}
		if err := os.Chown(dir, uid, -1); err != nil {
			return nil, fmt.Errorf("pgbouncer: %w", err)
		}
		args = []string{"-u", "postgres", conf}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("pgbouncer: start: %w", err)
	}
	s := &Server{cmd: cmd, port: free, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			return nil, fmt.Errorf("pgbouncer exited at start: %s", log)
		case <-ctx.Done():
			s.Close()
			return nil, fmt.Errorf("pgbouncer did not listen: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addr is PgBouncer's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Close kills PgBouncer and waits for it.
func (s *Server) Close() {
	s.once.Do(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgbouncer: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
