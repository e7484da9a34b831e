// Package kubeapiserver runs a throwaway Kubernetes control plane for tests,
// the way controller-runtime's envtest does: an etcd and a kube-apiserver on
// loopback, on free ports, with their data, certificates and keys in a temp
// dir. There is no controller-manager, scheduler or kubelet: objects are
// stored and list-watched, nothing reconciles them (a pod stays Pending
// until a test updates its status; a deleted pod goes at once only with a
// zero grace period).
//
// Authentication: one static bearer token of a system:masters user (Config,
// Kubeconfig), and ServiceAccount tokens through the TokenRequest API
// (ServiceAccountToken) checked by RBAC. Tokens live in files of the temp
// dir and in memory, never in a process's arguments or a log line.
//
// The etcd is Debian's etcd-server (scripts/install-etcd.sh); the
// kube-apiserver is built by scripts/install-kube-apiserver.sh into
// ${XDG_CACHE_HOME:-$HOME/.cache}/dubbo-admin/kube-apiserver-<Version>/, or
// named by ADMIN_KUBE_APISERVER. Available says whether both are there and,
// if not, how to get them.
package kubeapiserver

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
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

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/internal/testenv"
)

// Version is the kube-apiserver release the tests run against; it must match
// test/kube/tools/go.mod (a spec checks).
const Version = "v1.37.2"

// BinaryEnv names an explicit kube-apiserver binary, overriding the cache.
const BinaryEnv = "ADMIN_KUBE_APISERVER"

// startTimeout bounds each process's start-up; the apiserver is ready in
// 2-3 s on an idle machine, much later on a loaded 2-core one.
const startTimeout = 2 * time.Minute

// BinaryPath is where the kube-apiserver is expected: $ADMIN_KUBE_APISERVER,
// else the install script's cache.
func BinaryPath() string {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "dubbo-admin", "kube-apiserver-"+Version, "kube-apiserver")
}

// Available reports whether etcd and the kube-apiserver are installed and,
// if not, why and how to install them.
func Available() (bool, string) {
	if ok, why := etcdserver.Available(); !ok {
		return false, why
	}
	bin := BinaryPath()
	if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return false, fmt.Sprintf("kube-apiserver %s not found at %s: build it with scripts/install-kube-apiserver.sh "+
			"(about 10 min on 2 cores, once; cached outside the checkout) or set %s", Version, bin, BinaryEnv)
	}
	return true, ""
}

// Server is one etcd and one kube-apiserver.
type Server struct {
	dir     string
	apiPort int
	token   string // the system:masters user's; never printed
	etcd    *etcdserver.Server

	mu        sync.Mutex
	apiserver *process
}

// Start starts etcd and the kube-apiserver with their files under dir (which
// belongs to the caller) and returns once the apiserver is ready.
func Start(ctx context.Context, dir string) (*Server, error) {
	if ok, why := Available(); !ok {
		return nil, errors.New(why)
	}
	s := &Server{dir: dir}
	var err error
	if s.apiPort, err = testenv.FreePort(); err != nil {
		return nil, err
	}
	if err := s.writeFiles(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.path("etcd"), 0o700); err != nil {
		return nil, err
	}
	if s.etcd, err = etcdserver.Start(ctx, s.path("etcd")); err != nil {
		return nil, fmt.Errorf("kubeapiserver: %w", err)
	}
	if err := s.StartAPIServer(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) path(name string) string { return filepath.Join(s.dir, name) }

// writeFiles makes the admin token file, the service-account signing key
// and the admin kubeconfig's directory.
func (s *Server) writeFiles() error {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	s.token = hex.EncodeToString(b)
	if err := os.WriteFile(s.path("tokens.csv"), []byte(s.token+`,admin,admin-uid,"system:masters"`+"\n"), 0o600); err != nil {
		return fmt.Errorf("kubeapiserver: write token file: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("kubeapiserver: service-account key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(s.path("sa.key"), keyPEM, 0o600); err != nil {
		return fmt.Errorf("kubeapiserver: write service-account key: %w", err)
	}
	return os.MkdirAll(s.path("certs"), 0o700)
}

func (s *Server) caFile() string  { return s.path("certs/apiserver.crt") }
func (s *Server) adminKC() string { return s.path("admin.kubeconfig") }
func (s *Server) apiserverURL() string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.apiPort))
}

// StartAPIServer starts the kube-apiserver if it is stopped, on the same
// port, etcd and certificates, and waits until /readyz answers ok.
func (s *Server) StartAPIServer(ctx context.Context) error {
	s.mu.Lock()
	running := s.apiserver != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	p, err := startProcess(s.path("kube-apiserver.log"), BinaryPath(),
		"--etcd-servers="+s.etcd.Endpoint(),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(s.apiPort),
		"--cert-dir="+s.path("certs"),
		"--service-cluster-ip-range=127.0.100.0/24",
		"--endpoint-reconciler-type=none",
		"--service-account-key-file="+s.path("sa.key"),
		"--service-account-signing-key-file="+s.path("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--token-auth-file="+s.path("tokens.csv"),
		"--authorization-mode=RBAC",
		// No controller-manager creates the namespaces' default ServiceAccount.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.apiserver = p
	s.mu.Unlock()
	err = p.waitReady(ctx, "kube-apiserver", func() bool {
		if _, err := os.Stat(s.caFile()); err != nil {
			return false
		}
		client, err := s.httpClient()
		if err != nil {
			return false
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.apiserverURL()+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+s.token)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		s.StopAPIServer()
		return err
	}
	return s.WriteKubeconfig(s.adminKC(), s.token)
}

func (s *Server) httpClient() (*http.Client, error) {
	ca, err := os.ReadFile(s.caFile())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("kubeapiserver: no certificate in " + s.caFile())
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, nil
}

// StopAPIServer stops the kube-apiserver (SIGTERM, then SIGKILL) and waits
// for it; etcd and the data stay for StartAPIServer.
func (s *Server) StopAPIServer() {
	s.mu.Lock()
	p := s.apiserver
	s.apiserver = nil
	s.mu.Unlock()
	p.stop()
}

// Close stops the apiserver and etcd and waits for them; the files stay in
// the caller's dir.
func (s *Server) Close() {
	s.StopAPIServer()
	s.etcd.Close()
}

// Host is the apiserver's URL, https://127.0.0.1:PORT.
func (s *Server) Host() string { return s.apiserverURL() }

// Addr is the apiserver's host:port, e.g. for a proxy in front of it.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.apiPort)) }

// CAFile is the PEM file that verifies the apiserver's serving certificate.
func (s *Server) CAFile() string { return s.caFile() }

// Config is a client config of the system:masters user.
func (s *Server) Config() *rest.Config { return s.ConfigWithToken(s.token) }

// ConfigWithToken is a client config authenticating with token.
func (s *Server) ConfigWithToken(token string) *rest.Config {
	return &rest.Config{
		Host:            s.apiserverURL(),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: s.caFile()},
		QPS:             -1, // no client-side rate limit: the tests measure the server
	}
}

// Client is a clientset of the system:masters user.
func (s *Server) Client() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(s.Config())
}

// NewClient is a clientset on connections of its own, not on client-go's
// process-wide transport cache, as a separate replica would have; closeIdle
// closes them once the caller is done (so that a leak check finds none).
func NewClient(rc *rest.Config) (client kubernetes.Interface, closeIdle func(), err error) {
	rc = rest.CopyConfig(rc)
	// HTTP/1.1: client-go's HTTP/2 transport gives no handle to close its
	// idle connections.
	rc.TLSClientConfig.NextProtos = []string{"http/1.1"}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	rc.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeapiserver: %w", err)
	}
	c, err := kubernetes.NewForConfigAndClient(rc, hc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeapiserver: %w", err)
	}
	return c, func() { utilnet.CloseIdleConnectionsFor(hc.Transport) }, nil
}

// Kubeconfig is the path of a kubeconfig file (mode 0600) of the
// system:masters user.
func (s *Server) Kubeconfig() string { return s.adminKC() }

// WriteKubeconfig writes a kubeconfig file (mode 0600) that reaches the
// apiserver with token (the system:masters user's when empty), with context
// "test". server overrides the apiserver's address (a proxy's host:port)
// when not empty.
func (s *Server) WriteKubeconfig(path, token string, server ...string) error {
	if token == "" {
		token = s.token
	}
	host := s.apiserverURL()
	if len(server) > 0 && server[0] != "" {
		host = "https://" + server[0]
	}
	ca, err := os.ReadFile(s.caFile())
	if err != nil {
		return fmt.Errorf("kubeapiserver: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos["test"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	cfg.CurrentContext = "test"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeapiserver: kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("kubeapiserver: write kubeconfig: %w", err)
	}
	return nil
}

// ServiceAccountToken returns a token of ServiceAccount namespace/name (which
// must exist), valid for an hour, through the TokenRequest API.
func (s *Server) ServiceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	client, closeIdle, err := NewClient(s.Config())
	if err != nil {
		return "", err
	}
	defer closeIdle()
	hour := int64(3600)
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("kubeapiserver: token of service account %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// process is one child process with its log file.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has been reaped
}

func startProcess(logPath, bin string, args ...string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and killed with the test binary even on kill -9.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("kubeapiserver: start %s: %w", filepath.Base(bin), err)
	}
	p := &process{name: filepath.Base(bin), log: logPath, cmd: cmd, exit: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.exit) }()
	return p, nil
}

// waitReady polls ready every 100 ms until it is true, the process exits,
// ctx ends or startTimeout passes.
func (p *process) waitReady(ctx context.Context, what string, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !ready() {
		select {
		case <-p.exit:
			return fmt.Errorf("kubeapiserver: %s exited during start-up: %s", what, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("kubeapiserver: %s not ready: %w: %s", what, context.Cause(ctx), p.tail())
		case <-tick.C:
		}
	}
	return nil
}

// tail is the end of the process's log, for an error.
func (p *process) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return strings.TrimSpace(string(data))
}

// stop sends SIGTERM, then SIGKILL after 20 s, and waits. A nil p is stopped.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-p.exit:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exit
	}
}
