package zookeeper

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/discovery"
)

// Categories under /dubbo/<interface> that hold registrations, and the side
// each implies.
var categories = map[string]string{
	"providers": discovery.SideProvider,
	"consumers": discovery.SideConsumer,
}

// parseURLNode maps a node under /dubbo/<interface>/<category>/ to a
// registration. The node's name is a URL-encoded Dubbo URL such as
// dubbo://10.0.0.1:20880/org.example.Greeter?application=demo&methods=hi&version=1.0.0
func parseURLNode(iface, category, name string) (discovery.Registration, error) {
	var r discovery.Registration
	raw, err := url.QueryUnescape(name)
	if err != nil {
		return r, fmt.Errorf("node name is not URL-encoded: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return r, fmt.Errorf("not a Dubbo URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return r, fmt.Errorf("not a Dubbo URL: %q has no protocol or host", raw)
	}
	q := u.Query()
	r.Application = q.Get("application")
	r.IP = u.Hostname()
	if p := u.Port(); p != "" {
		if r.Port, err = strconv.Atoi(p); err != nil {
			return r, fmt.Errorf("port %q: %w", p, err)
		}
	}
	r.Protocol = u.Scheme
	if r.Protocol == "consumer" {
		r.Protocol = q.Get("protocol")
	}
	r.Interface = q.Get("interface")
	if r.Interface == "" {
		r.Interface = strings.TrimPrefix(u.Path, "/")
	}
	if r.Interface == "" {
		r.Interface = iface
	}
	r.Group, r.Version = q.Get("group"), q.Get("version")
	if m := q.Get("methods"); m != "" {
		r.Methods = strings.Split(m, ",")
	}
	if w := q.Get("weight"); w != "" {
		if r.Weight, err = strconv.Atoi(w); err != nil {
			return r, fmt.Errorf("weight %q: %w", w, err)
		}
	}
	r.Side = q.Get("side")
	if r.Side == "" {
		r.Side = categories[category]
	}
	if ts := q.Get("timestamp"); ts != "" {
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return r, fmt.Errorf("timestamp %q: %w", ts, err)
		}
		r.Timestamp = time.UnixMilli(ms).UTC()
	}
	return r, r.Validate()
}

// serviceInstance is the part of Curator's ServiceInstance JSON that Dubbo
// writes under /services/<app>/<id> and Admin reads.
type serviceInstance struct {
	Name                string `json:"name"`
	ID                  string `json:"id"`
	Address             string `json:"address"`
	Port                *int   `json:"port"`
	RegistrationTimeUTC int64  `json:"registrationTimeUTC"`
	Payload             struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"payload"`
}

// endpoint is one entry of the dubbo.endpoints metadata.
type endpoint struct {
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

// parseInstanceNode maps the data of /services/<app>/<id>.
func parseInstanceNode(app string, data []byte) (discovery.Registration, error) {
	var r discovery.Registration
	var si serviceInstance
	if err := json.Unmarshal(data, &si); err != nil {
		return r, fmt.Errorf("instance data is not ServiceInstance JSON: %w", err)
	}
	if si.Name != "" && si.Name != app {
		return r, fmt.Errorf("instance names application %q but is registered under %q", si.Name, app)
	}
	if si.Port == nil {
		return r, fmt.Errorf("instance %q has no port", si.ID)
	}
	r = discovery.Registration{
		Application: app, IP: si.Address, Port: *si.Port, Side: discovery.SideProvider,
		Metadata: si.Payload.Metadata,
	}
	if si.RegistrationTimeUTC > 0 {
		r.Timestamp = time.UnixMilli(si.RegistrationTimeUTC).UTC()
	}
	if eps := si.Payload.Metadata["dubbo.endpoints"]; eps != "" {
		var list []endpoint
		if err := json.Unmarshal([]byte(eps), &list); err != nil {
			return r, fmt.Errorf("dubbo.endpoints: %w", err)
		}
		for _, ep := range list {
			if ep.Port == r.Port || r.Protocol == "" {
				r.Protocol = ep.Protocol
			}
		}
	}
	return r, r.Validate()
}
