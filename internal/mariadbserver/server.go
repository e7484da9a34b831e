// Package mariadbserver runs a throwaway MariaDB server for fault-injection
// tests: a data directory in a temp dir, a free loopback port, and Stop and
// Start so a suite can take the database away and bring it back with its
// data. It needs Debian's mariadb-server package (mariadbd and
// mariadb-install-db); Available says whether they are installed.
package mariadbserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Server is one throwaway mariadbd.
type Server struct {
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has been reaped
}

// Available reports whether the MariaDB binaries are installed, and if not,
// why.
func Available() (bool, string) {
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := lookPath(bin); err != nil {
			return false, bin + " not installed (Debian package mariadb-server)"
		}
	}
	return true, ""
}

func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", bin)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// Start initialises a data directory under dir and starts the server on a
// free loopback port; it returns once the server accepts connections.
func Start(ctx context.Context, dir string) (*Server, error) {
	install, err := lookPath("mariadb-install-db")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, port: port}
	init := exec.CommandContext(ctx, install, "--no-defaults", "--user=root", "--datadir="+s.dataDir(),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := init.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, out)
	}
	if err := s.Restart(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// DSN is a server-level DSN for root.
func (s *Server) DSN() string {
	return "root@tcp(" + s.Addr() + ")/?parseTime=true&loc=UTC&clientFoundRows=true"
}

// Restart starts the server if it is stopped, on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	bin, err := lookPath("mariadbd")
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(s.dir, "mariadbd.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--no-defaults", "--user=root", "--datadir="+s.dataDir(),
		"--socket="+filepath.Join(s.dir, "sock"), "--bind-address=127.0.0.1", "--port="+strconv.Itoa(s.port),
		"--skip-name-resolve", "--innodb-buffer-pool-size=32M", "--skip-log-bin", "--pid-file="+filepath.Join(s.dir, "pid"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start mariadbd: %w", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exit) }()
	s.cmd, s.exit = cmd, exit
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-exit:
			s.cmd = nil
			log, _ := os.ReadFile(filepath.Join(s.dir, "mariadbd.log"))
			return fmt.Errorf("mariadbd exited during start-up: %s", log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("mariadbd did not accept connections within 60s")
		}
	}
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 30 s) and waits
// for it to exit. The data stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Close stops the server and removes nothing: dir belongs to the caller.
func (s *Server) Close() { s.Stop() }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
