// Package etcdserver runs a throwaway single-member etcd for tests: a data
// directory in a temp dir, free loopback ports for clients and peers, and
// Stop, Kill and Restart so a suite can take etcd away and bring it back
// with its data. It needs Debian's etcd-server package
// (scripts/install-etcd.sh); Available says whether it is installed.
package etcdserver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/dubbo-admin/internal/testenv"
)

// Server is one throwaway etcd member.
type Server struct {
	dir        string
	name       string
	cluster    string // --initial-cluster
	clientPort int
	peerPort   int

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has been reaped
}

// Available reports whether the etcd binary is installed, and if not, why.
func Available() (bool, string) {
	if _, err := binary(); err != nil {
		return false, "etcd not installed (Debian package etcd-server; run scripts/install-etcd.sh)"
	}
	return true, ""
}

func binary() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	const p = "/usr/bin/etcd"
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// Start starts a member with its data under dir on free loopback ports and
// returns once it answers its health check.
func Start(ctx context.Context, dir string) (*Server, error) {
	ss, err := StartCluster(ctx, dir, 1)
	if err != nil {
		return nil, err
	}
	return ss[0], nil
}

// StartCluster starts an n-member cluster, each member's data under
// dir/mN, and returns once every member answers its health check.
func StartCluster(ctx context.Context, dir string, n int) ([]*Server, error) {
	ss := make([]*Server, n)
	var peers []string
	for i := range ss {
		clientPort, err := testenv.FreePort()
		if err != nil {
			return nil, err
		}
		peerPort, err := testenv.FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{dir: filepath.Join(dir, fmt.Sprintf("m%d", i)), name: fmt.Sprintf("m%d", i), clientPort: clientPort, peerPort: peerPort}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, err
		}
		ss[i] = s
		peers = append(peers, s.name+"="+s.peerURL())
	}
	for _, s := range ss {
		s.cluster = strings.Join(peers, ",")
		if err := s.launch(); err != nil {
			closeAll(ss)
			return nil, err
		}
	}
	for _, s := range ss {
		if err := s.waitHealthy(ctx); err != nil {
			closeAll(ss)
			return nil, err
		}
	}
	return ss, nil
}

func closeAll(ss []*Server) {
	for _, s := range ss {
		if s != nil {
			s.Close()
		}
	}
}

// Addr is the client host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.clientPort)) }

// Endpoint is the client URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr() }

func (s *Server) peerURL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.peerPort))
}

// Restart starts the member if it is stopped, on the same ports and data,
// and waits until it is healthy (which, in a cluster, needs a quorum).
func (s *Server) Restart(ctx context.Context) error {
	if err := s.launch(); err != nil {
		return err
	}
	return s.waitHealthy(ctx)
}

// launch starts the process if it is not running.
func (s *Server) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	bin, err := binary()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin,
		"--name", s.name,
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", s.Endpoint(), "--advertise-client-urls", s.Endpoint(),
		"--listen-peer-urls", s.peerURL(), "--initial-advertise-peer-urls", s.peerURL(),
		"--initial-cluster", s.cluster, "--initial-cluster-state", "new",
		"--heartbeat-interval", "100", "--election-timeout", "1000",
		"--quota-backend-bytes", strconv.Itoa(256<<20), "--snapshot-count", "10000",
		"--logger", "zap", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start etcd: %w", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exit) }()
	s.cmd, s.exit = cmd, exit
	return nil
}

func (s *Server) logPath() string { return filepath.Join(s.dir, "etcd.log") }

// waitHealthy polls /health (bounded: 60 s) until the member answers.
func (s *Server) waitHealthy(ctx context.Context) error {
	s.mu.Lock()
	exit := s.exit
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for !s.healthy() {
		select {
		case <-exit:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("etcd exited during start-up: %s", tail(s.logPath()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // poll interval of a bounded readiness probe
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd did not become healthy within 60s: %s", tail(s.logPath()))
		}
	}
	return nil
}

// healthy asks the member's /health endpoint, bounded by one second.
func (s *Server) healthy() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(s.Endpoint() + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`)
}

// Stop shuts the member down (SIGTERM, then SIGKILL after 30 s) and waits
// for it to exit. The data stays for Restart.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

// Kill kills the member (SIGKILL) and waits for it to exit. The data stays.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exit:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exit
	}
	s.cmd = nil
}

// Close stops the member and removes nothing: the caller owns dir.
func (s *Server) Close() { s.Kill() }

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
