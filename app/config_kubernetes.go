package app

import (
	"fmt"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
)

// Election backends (election.backend).
const (
	ElectionSQL = "sql" // the lease row in Admin's database
	// ElectionKubernetes elects through a coordination.k8s.io Lease
	// (election.kubernetes), with the election's timings.
	ElectionKubernetes = "kubernetes"
)

// validateBackend checks election.backend and its section.
func (e ElectionConfig) validateBackend() error {
	switch e.Backend {
	case ElectionSQL:
		return nil
	case ElectionKubernetes:
		return e.validateKubernetes()
	case ElectionEtcd:
		return e.validateEtcd()
	default:
		return fmt.Errorf("%w: election.backend %q: must be %q, %q or %q", ErrInvalidConfig, e.Backend, ElectionSQL, ElectionKubernetes, ElectionEtcd)
	}
}

// backendFields are election.backend and the backends' settings.
func backendFields() []field {
	return append([]field{
		strField("election.backend", "ADMIN_ELECTION_BACKEND", "election-backend", scopeAll,
			"election backend: sql (a lease row in the database), kubernetes (a Lease: election.kubernetes) or etcd (election.etcd)",
			func(c *Config) *string { return &c.Election.Backend }),
	}, append(kubernetesFields(), etcdFields()...)...)
}

// KubernetesElectionConfig is election.kubernetes: where the Lease is.
type KubernetesElectionConfig struct {
	// Namespace of the Lease; empty in a pod means the pod's namespace.
	Namespace string `json:"namespace"`
	// LeaseName is the Lease's name; empty means election.name.
	LeaseName string `json:"leaseName"`
	// Kubeconfig is a kubeconfig file; empty means in-cluster (the pod's
	// service account).
	Kubeconfig string `json:"kubeconfig"`
}

// kubernetes returns the Kubernetes backend's configuration, defaulted.
func (e ElectionConfig) kubernetes() klease.Config {
	return klease.Config{
		Election:   e.Leader(),
		Namespace:  e.Kubernetes.Namespace,
		LeaseName:  e.Kubernetes.LeaseName,
		Kubeconfig: e.Kubernetes.Kubeconfig,
	}.Defaulted()
}

// validateKubernetes checks election.kubernetes (and that the timings fit
// a Lease: whole seconds).
func (e ElectionConfig) validateKubernetes() error {
	if err := e.kubernetes().Validate(); err != nil {
		return fmt.Errorf("%w: election.kubernetes: %w", ErrInvalidConfig, err)
	}
	return nil
}

// kubernetesFields are the settings of the Kubernetes backend.
func kubernetesFields() []field {
	k := func(c *Config) *KubernetesElectionConfig { return &c.Election.Kubernetes }
	return []field{
		strField("election.kubernetes.namespace", "ADMIN_ELECTION_KUBERNETES_NAMESPACE", "election-namespace", scopeAll,
			"namespace of the election's Lease (default in a pod: its own)", func(c *Config) *string { return &k(c).Namespace }),
		strField("election.kubernetes.leaseName", "ADMIN_ELECTION_KUBERNETES_LEASE_NAME", "election-lease-name", scopeAll,
			"name of the election's Lease (default: election.name)", func(c *Config) *string { return &k(c).LeaseName }),
		strField("election.kubernetes.kubeconfig", "ADMIN_ELECTION_KUBERNETES_KUBECONFIG", "election-kubeconfig", scopeAll,
			"kubeconfig file of the election's apiserver (default: in-cluster)", func(c *Config) *string { return &k(c).Kubeconfig }),
	}
}

// kubernetesIdentity is the SQL backend's identity (host-pid-nonce; in a
// pod the host name is the pod's), prefixed with $POD_NAME when the host
// name is not already it.
func kubernetesIdentity() string {
	id := leader.NewIdentity()
	if pod := os.Getenv("POD_NAME"); pod != "" && !strings.HasPrefix(id, pod+"-") {
		id = pod + "/" + id
	}
	return id
}

// newKubernetesElector is the Kubernetes Lease backend of the election.
func newKubernetesElector(cfg Config, epochs *leader.Epochs, m *Metrics, log logr.Logger) (*klease.Elector, error) {
	kc := cfg.Election.kubernetes()
	rc, err := kc.RESTConfig()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes election: %w", err)
	}
	opts := []klease.Option{klease.WithLogger(log.WithName("leader")), klease.WithIdentity(kubernetesIdentity())}
	if m != nil {
		opts = append(opts, klease.WithObserver(m))
	}
	return klease.New(client, epochs, kc, opts...)
}
