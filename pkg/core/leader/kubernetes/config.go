package kubernetes

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Config is one election on one Lease.
type Config struct {
	// Election holds the election name (the epoch's name in the store's
	// database, shown by `leader status`) and the timings, with the SQL
	// lease's meaning. LeaseDuration is written to the Lease as
	// spec.leaseDurationSeconds, so it must be whole seconds.
	Election leader.Config `json:"election" yaml:"election"`
	// Namespace of the Lease. Empty in a pod means the pod's own namespace
	// (from its service account); elsewhere it is required.
	Namespace string `json:"namespace" yaml:"namespace"`
	// LeaseName is the Lease object's name; empty means the election name,
	// which must then be a valid object name.
	LeaseName string `json:"leaseName" yaml:"leaseName"`
	// Kubeconfig is the path of a kubeconfig file. Empty means the in-cluster
	// configuration (the pod's service account token).
	Kubeconfig string `json:"kubeconfig" yaml:"kubeconfig"`
}

// inClusterNamespaceFile holds a pod's namespace, beside its token.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Defaulted fills Namespace (in a pod) and LeaseName (from the election
// name) when they are empty.
func (c Config) Defaulted() Config {
	if c.LeaseName == "" {
		c.LeaseName = c.Election.Name
	}
	if c.Namespace == "" && c.Kubeconfig == "" {
		if ns, err := os.ReadFile(inClusterNamespaceFile); err == nil {
			c.Namespace = strings.TrimSpace(string(ns))
		}
	}
	return c
}

// Validate checks the timings (see leader.Config.Validate), that
// LeaseDuration is whole seconds, that Namespace is a DNS label, that
// LeaseName is a DNS subdomain and that Kubeconfig, when set, is a readable
// file. Each error names the field and wraps leader.ErrInvalidConfig.
func (c Config) Validate() error {
	if err := c.Election.Validate(); err != nil {
		return err
	}
	if d := c.Election.LeaseDuration; d%time.Second != 0 {
		return fmt.Errorf("%w: leaseDuration is %v: a Lease holds whole seconds", leader.ErrInvalidConfig, d)
	}
	if c.Namespace == "" {
		return fmt.Errorf("%w: namespace is empty: set it, or run in a pod (whose namespace is the default)", leader.ErrInvalidConfig)
	}
	if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
		return fmt.Errorf("%w: namespace %q: %s", leader.ErrInvalidConfig, c.Namespace, strings.Join(errs, "; "))
	}
	if c.LeaseName == "" {
		return fmt.Errorf("%w: leaseName is empty", leader.ErrInvalidConfig)
	}
	if errs := validation.IsDNS1123Subdomain(c.LeaseName); len(errs) > 0 {
		return fmt.Errorf("%w: leaseName %q: %s (set leaseName when the election name is not an object name)",
			leader.ErrInvalidConfig, c.LeaseName, strings.Join(errs, "; "))
	}
	if c.Kubeconfig != "" {
		st, err := os.Stat(c.Kubeconfig)
		if err != nil {
			return fmt.Errorf("%w: kubeconfig %q: %w", leader.ErrInvalidConfig, c.Kubeconfig, err)
		}
		if st.IsDir() {
			return fmt.Errorf("%w: kubeconfig %q is a directory, want a file", leader.ErrInvalidConfig, c.Kubeconfig)
		}
	}
	return nil
}

// RESTConfig loads the client configuration: the Kubeconfig file, or the
// in-cluster one when it is empty. It has no client-side rate limit
// (client-go's default is 5 requests/s): the elector paces itself by
// RetryPeriod, and a limiter's wait would only eat into the renew deadline.
func (c Config) RESTConfig() (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if c.Kubeconfig == "" {
		if rc, err = rest.InClusterConfig(); err != nil {
			if errors.Is(err, rest.ErrNotInCluster) {
				return nil, fmt.Errorf("%w: kubeconfig is empty and this is not a pod: set kubeconfig", leader.ErrInvalidConfig)
			}
			return nil, fmt.Errorf("kubernetes election: in-cluster config: %w", err)
		}
	} else if rc, err = clientcmd.BuildConfigFromFlags("", c.Kubeconfig); err != nil {
		return nil, fmt.Errorf("%w: kubeconfig %q: %w", leader.ErrInvalidConfig, c.Kubeconfig, err)
	}
	rc.QPS = -1
	return rc, nil
}
