package discovery

import (
	"maps"
	"slices"
)

// set collects distinct strings and returns them sorted.
type set map[string]struct{}

func (s set) add(v string) {
	if v != "" {
		s[v] = struct{}{}
	}
}

func (s set) sorted() []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(s))
}

func application(name string, regs []Registration) Application {
	instances, provides, consumes := set{}, set{}, set{}
	for _, r := range regs {
		instances.add(r.instanceKey())
		if r.Side == SideProvider {
			provides.add(r.serviceKey())
		} else {
			consumes.add(r.serviceKey())
		}
	}
	return Application{Name: name, Instances: instances.sorted(), Provides: provides.sorted(), Consumes: consumes.sorted()}
}

func instance(regs []Registration) Instance {
	first := regs[0]
	in := Instance{Application: first.Application, IP: first.IP, Port: first.Port, Side: SideConsumer}
	provides, consumes := set{}, set{}
	for _, r := range regs {
		if r.Side == SideProvider {
			in.Side = SideProvider
			provides.add(r.serviceKey())
		} else {
			consumes.add(r.serviceKey())
		}
		// The instance's own registration (application level) names the
		// protocol and metadata; interface-level URLs fill in the gaps.
		if r.Protocol != "" && (in.Protocol == "" || r.Interface == "") {
			in.Protocol = r.Protocol
		}
		in.Weight = max(in.Weight, r.Weight)
		if !r.Timestamp.IsZero() {
			if in.RegisteredAt.IsZero() || r.Timestamp.Before(in.RegisteredAt) {
				in.RegisteredAt = r.Timestamp
			}
			if r.Timestamp.After(in.UpdatedAt) {
				in.UpdatedAt = r.Timestamp
			}
		}
		if r.Interface == "" && len(r.Metadata) > 0 {
			if in.Metadata == nil {
				in.Metadata = map[string]string{}
			}
			maps.Copy(in.Metadata, r.Metadata)
		}
	}
	in.Provides, in.Consumes = provides.sorted(), consumes.sorted()
	return in
}

func service(regs []Registration) Service {
	first := regs[0]
	svc := Service{Interface: first.Interface, Group: first.Group, Version: first.Version}
	methods, providers, consumers, papps, capps := set{}, set{}, set{}, set{}, set{}
	for _, r := range regs {
		if r.Side == SideProvider {
			for _, m := range r.Methods {
				methods.add(m)
			}
			providers.add(r.instanceKey())
			papps.add(r.Application)
		} else {
			consumers.add(r.instanceKey())
			capps.add(r.Application)
		}
	}
	svc.Methods, svc.Providers, svc.Consumers = methods.sorted(), providers.sorted(), consumers.sorted()
	svc.ProviderApplications, svc.ConsumerApplications = papps.sorted(), capps.sorted()
	return svc
}
