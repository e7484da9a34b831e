package discovery

import (
	"fmt"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/apache/dubbo-admin/pkg/core/source/file"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// File is the content of one instance file (YAML or JSON): the instances of
// one application and the services each provides and consumes.
//
//	application: shop-order
//	instances:
//	  - ip: 10.0.1.11
//	    port: 20880
//	    protocol: dubbo
//	    weight: 100
//	    registeredAt: 2024-05-01T08:00:00Z
//	    provides:
//	      - {interface: org.example.OrderService, version: 1.0.0, methods: [create, get]}
//	    consumes:
//	      - {interface: org.example.UserService, version: 1.0.0}
type File struct {
	Application string         `json:"application"`
	Instances   []FileInstance `json:"instances"`
}

// FileInstance is one instance of a File.
type FileInstance struct {
	IP           string            `json:"ip"`
	Port         int               `json:"port"`
	Protocol     string            `json:"protocol,omitempty"`
	Weight       int               `json:"weight,omitempty"`
	RegisteredAt time.Time         `json:"registeredAt,omitzero"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Provides     []FileService     `json:"provides,omitempty"`
	Consumes     []FileService     `json:"consumes,omitempty"`
}

// FileService names a service of a FileInstance.
type FileService struct {
	Interface string   `json:"interface"`
	Group     string   `json:"group,omitempty"`
	Version   string   `json:"version,omitempty"`
	Methods   []string `json:"methods,omitempty"`
}

// FileOpener opens file:// sources of instance files.
var FileOpener = file.Opener(DecodeFile)

// DecodeFile turns an instance file into registrations: one per instance
// (application level) and one per service it provides or consumes. Unknown
// fields and duplicate entries make the whole file malformed.
func DecodeFile(name string, data []byte) ([]store.Resource, error) {
	var f File
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	if f.Application == "" {
		return nil, fmt.Errorf("decode %s: no application", name)
	}
	var out []store.Resource
	seen := map[string]bool{}
	add := func(id string, r Registration) error {
		if seen[id] {
			return fmt.Errorf("decode %s: %s is listed twice", name, id)
		}
		seen[id] = true
		res, err := NewRegistration(id, r)
		if err != nil {
			return fmt.Errorf("decode %s: %w", name, err)
		}
		out = append(out, res)
		return nil
	}
	for _, in := range f.Instances {
		base := Registration{
			Application: f.Application, IP: in.IP, Port: in.Port, Protocol: in.Protocol,
			Weight: in.Weight, Timestamp: in.RegisteredAt.UTC(),
		}
		id := name + "#" + HostPort(in.IP, in.Port)
		self := base
		self.Side, self.Metadata = SideProvider, in.Metadata
		if err := add(id, self); err != nil {
			return nil, err
		}
		sides := []struct {
			side string
			svcs []FileService
		}{{SideProvider, in.Provides}, {SideConsumer, in.Consumes}}
		for _, sd := range sides {
			side := sd.side
			for _, s := range sd.svcs {
				r := base
				r.Side, r.Interface, r.Group, r.Version, r.Methods = side, s.Interface, s.Group, s.Version, s.Methods
				if s.Interface == "" {
					return nil, fmt.Errorf("decode %s: instance %s: a service without interface", name, HostPort(in.IP, in.Port))
				}
				if err := add(id+"/"+side+"/"+ServiceKey(s.Group, s.Interface, s.Version), r); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}
