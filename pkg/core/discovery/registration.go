package discovery

import (
	"encoding/json"
	"fmt"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

// NewRegistration wraps r as the raw resource a source reports; id must be
// unique within the source (a ZooKeeper path, a file and index).
func NewRegistration(id string, r Registration) (store.Resource, error) {
	if err := r.Validate(); err != nil {
		return store.Resource{}, fmt.Errorf("registration %s: %w", id, err)
	}
	spec, err := json.Marshal(r)
	if err != nil {
		return store.Resource{}, fmt.Errorf("registration %s: %w", id, err)
	}
	return store.Resource{Kind: KindRegistration, Key: id, Spec: spec}, nil
}

// Validate checks what the view relies on.
func (r Registration) Validate() error {
	switch {
	case r.Application == "":
		return fmt.Errorf("no application")
	case r.IP == "":
		return fmt.Errorf("no ip")
	case r.Port < 0 || r.Port > 65535:
		return fmt.Errorf("port %d out of range", r.Port)
	case r.Side != SideProvider && r.Side != SideConsumer:
		return fmt.Errorf("side %q: want %q or %q", r.Side, SideProvider, SideConsumer)
	case r.Interface == "" && r.Side == SideConsumer:
		return fmt.Errorf("a consumer registration needs an interface")
	}
	return nil
}

func (r Registration) instanceKey() string { return InstanceKey(r.Application, r.IP, r.Port) }

func (r Registration) serviceKey() string {
	if r.Interface == "" {
		return ""
	}
	return ServiceKey(r.Group, r.Interface, r.Version)
}
