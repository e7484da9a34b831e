// Package zktest runs throwaway ZooKeeper servers and fills them with
// Dubbo registries, for the ZooKeeper source's specs and for the bench.
// Servers run from the jars of Debian's zookeeper package
// (scripts/install-zookeeper.sh).
package zktest

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Server is a throwaway standalone ZooKeeper on a loopback port.
type Server struct {
	Addr    string
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// Where Debian's packages put the jars. zookeeper.jar names its
// dependencies in its manifest's Class-Path; an upstream tarball layout
// (/usr/share/zookeeper/lib/*.jar) is accepted too.
var zkClasspaths = []string{"/usr/share/java/zookeeper.jar", "/usr/share/zookeeper/lib/*"}

// Find returns java and the classpath, or why they are missing.
func Find() (java, classpath, missing string) {
	java, err := exec.LookPath("java")
	if err != nil {
		return "", "", "java is not installed (run scripts/install-zookeeper.sh)"
	}
	for _, cp := range zkClasspaths {
		if matches, _ := filepath.Glob(cp); len(matches) > 0 {
			if strings.HasSuffix(cp, "*") && !containsZooKeeperJar(matches) {
				continue
			}
			return java, cp, ""
		}
	}
	return "", "", "the ZooKeeper server jars are not installed (run scripts/install-zookeeper.sh)"
}

func containsZooKeeperJar(paths []string) bool {
	for _, p := range paths {
		if strings.HasPrefix(filepath.Base(p), "zookeeper-3") || filepath.Base(p) == "zookeeper.jar" {
			return true
		}
	}
	return false
}

// Options tune a server for size; the zero value suits small specs.
type Options struct {
	// Heap is the JVM's -Xmx (default "256m").
	Heap string
	// NoSync turns off the fsync of ZooKeeper's transaction log
	// (forceSync=no): for a bench that loads a large tree.
	NoSync bool
}

// Start starts a server with its data in dir on a free port and waits
// (bounded) until it answers ruok.
func Start(java, classpath, dir string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`tickTime=200
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
minSessionTimeout=400
maxSessionTimeout=20000
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
`, filepath.Join(dir, "data"), port)
	if opts.NoSync {
		cfg += "forceSync=no\n"
	}
	heap := cmp.Or(opts.Heap, "256m")
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(java, "-Xmx"+heap, "-Dzookeeper.jmx.log4j.disable=true", "-cp", classpath,
		"org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with its test or bench
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start zookeeper: %w", err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(s.exited)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		if ruok(s.Addr) {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("zookeeper exited (%v): %s", s.waitErr, s.logTail())
		case <-time.After(200 * time.Millisecond): // poll interval of a bounded readiness probe
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("zookeeper did not answer on %s within 90s: %s", s.Addr, s.logTail())
		}
	}
}

// ruok is the readiness probe, bounded by a 2s deadline so it cannot hang.
func ruok(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ruok")); err != nil {
		return false
	}
	b, err := io.ReadAll(conn)
	return (err == nil || errors.Is(err, io.EOF)) && string(b) == "imok"
}

// Stop kills the server and waits for the process to end.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *Server) logTail() string {
	f, err := os.Open(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
