package discovery

import (
	"net"
	"strconv"
	"time"
)

// Resource kinds Discovery writes, and the raw kind its sources report.
const (
	KindApplication = "Application"
	KindInstance    = "Instance"
	KindService     = "Service"
	// KindRegistration is what sources report; the view derives the three
	// stored kinds from it and never stores it.
	KindRegistration = "Registration"
)

// Sides of a registration.
const (
	SideProvider = "provider"
	SideConsumer = "consumer"
)

// Labels Discovery sets on the resources it writes.
const (
	LabelApplication = "application"
	LabelInterface   = "interface"
)

// Registration is one entry of the registry. Interface is empty for an
// application-level instance registration.
type Registration struct {
	Application string            `json:"application"`
	IP          string            `json:"ip"`
	Port        int               `json:"port"`
	Protocol    string            `json:"protocol,omitempty"`
	Interface   string            `json:"interface,omitempty"`
	Group       string            `json:"group,omitempty"`
	Version     string            `json:"version,omitempty"`
	Methods     []string          `json:"methods,omitempty"`
	Weight      int               `json:"weight,omitempty"`
	Side        string            `json:"side"`
	Timestamp   time.Time         `json:"timestamp,omitzero"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Application is the spec of a KindApplication resource.
type Application struct {
	Name string `json:"name"`
	// Instances are the keys of its Instance resources.
	Instances []string `json:"instances"`
	// Provides and Consumes are service keys.
	Provides []string `json:"provides,omitempty"`
	Consumes []string `json:"consumes,omitempty"`
}

// Instance is the spec of a KindInstance resource.
type Instance struct {
	Application string `json:"application"`
	IP          string `json:"ip"`
	Port        int    `json:"port"`
	Protocol    string `json:"protocol,omitempty"`
	// Side is provider when the instance provides anything, else consumer.
	Side   string `json:"side"`
	Weight int    `json:"weight,omitempty"`
	// Provides and Consumes are service keys.
	Provides []string `json:"provides,omitempty"`
	Consumes []string `json:"consumes,omitempty"`
	// RegisteredAt is the earliest timestamp of its registrations,
	// UpdatedAt the latest.
	RegisteredAt time.Time         `json:"registeredAt,omitzero"`
	UpdatedAt    time.Time         `json:"updatedAt,omitzero"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// Service is the spec of a KindService resource.
type Service struct {
	Interface string   `json:"interface"`
	Group     string   `json:"group,omitempty"`
	Version   string   `json:"version,omitempty"`
	Methods   []string `json:"methods,omitempty"`
	// Providers and Consumers are instance keys; the applications are
	// listed too, as Admin shows them.
	Providers            []string `json:"providers,omitempty"`
	Consumers            []string `json:"consumers,omitempty"`
	ProviderApplications []string `json:"providerApplications,omitempty"`
	ConsumerApplications []string `json:"consumerApplications,omitempty"`
}

// InstanceKey is the key of the instance of app at ip:port.
func InstanceKey(app, ip string, port int) string {
	return app + "/" + HostPort(ip, port)
}

// HostPort joins ip and port, bracketing IPv6 addresses.
func HostPort(ip string, port int) string {
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// ServiceKey is Dubbo's service key: group/interface:version, with an empty
// group or version left out.
func ServiceKey(group, iface, version string) string {
	k := iface
	if group != "" {
		k = group + "/" + k
	}
	if version != "" {
		k += ":" + version
	}
	return k
}
