package engine

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

// KindRuntimeInstance is the kind Engine writes.
const KindRuntimeInstance = "RuntimeInstance"

// Labels Engine sets on the resources it writes.
const (
	LabelApplication = "application"
	LabelNamespace   = "namespace"
)

// RuntimeInstance is one workload instance (a pod) as Admin shows it.
type RuntimeInstance struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Node      string `json:"node,omitempty"`
	PodIP     string `json:"podIP,omitempty"`
	Phase     string `json:"phase,omitempty"`
	Ready     bool   `json:"ready"`
	// Application is the Dubbo application the instance runs, from its
	// labels; empty when none says.
	Application string            `json:"application,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreatedAt   time.Time         `json:"createdAt,omitzero"`
	StartedAt   time.Time         `json:"startedAt,omitzero"`
}

// Key is the store key of the instance.
func (r RuntimeInstance) Key() string { return r.Namespace + "/" + r.Name }

// Resource wraps the instance as a store resource.
func (r RuntimeInstance) Resource() (store.Resource, error) {
	if r.Name == "" || r.Namespace == "" {
		return store.Resource{}, fmt.Errorf("runtime instance %q in namespace %q: name and namespace are required", r.Name, r.Namespace)
	}
	spec, err := json.Marshal(r)
	if err != nil {
		return store.Resource{}, fmt.Errorf("runtime instance %s: %w", r.Key(), err)
	}
	labels := map[string]string{LabelNamespace: r.Namespace}
	if r.Application != "" {
		labels[LabelApplication] = r.Application
	}
	return store.Resource{Kind: KindRuntimeInstance, Key: r.Key(), Labels: labels, Spec: spec}, nil
}
