package discovery

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// state is what the view keeps of one derived resource.
type state interface {
	head() *node
	// derive returns the spec and labels; false when no registration
	// makes the resource up any more.
	derive() (spec any, labels map[string]string, ok bool)
}

// node is the part of a state every kind has.
type node struct {
	kind, key string
	// members counts the registrations the resource is made of.
	members int
	// dirty: queued for the next Flush.
	dirty bool
	// written: the store holds the spec whose digest is digest.
	written bool
	digest  uint64
}

func (n *node) head() *node { return n }

// member is one registration as the view keeps it: what the specs of its
// resources read, with the strings a registry repeats interned.
type member struct {
	id   string
	app  *appState
	inst *instState
	svc  *svcState // nil for an application-level registration
	// provider: Side is SideProvider.
	provider bool
	protocol string
	weight   int
	methods  []string
	ts       time.Time
	meta     *sharedMeta
}

// sharedMeta is one set of metadata, shared by the registrations that
// list it (view.shareMeta); never changed.
type sharedMeta struct {
	key  string
	md   map[string]string
	refs int
}

// bag is a sorted multiset of strings: each distinct value with how many
// members hold it. A spec lists its values; adding or removing one member's
// value costs a binary search and a shift, not a pass over every member.
type bag []counted

type counted struct {
	s string
	n int
}

func cmpCounted(c counted, s string) int { return strings.Compare(c.s, s) }

// put adds d (1 or -1) to the count of s; an empty s is not counted.
func (b *bag) put(s string, d int) {
	if s == "" {
		return
	}
	i, ok := slices.BinarySearchFunc(*b, s, cmpCounted)
	switch {
	case ok && (*b)[i].n+d == 0:
		*b = slices.Delete(*b, i, i+1)
	case ok:
		(*b)[i].n += d
	case d > 0:
		*b = slices.Insert(*b, i, counted{s: s, n: d})
	}
}

// values returns the distinct values in order; nil when there are none.
func (b bag) values() []string {
	if len(b) == 0 {
		return nil
	}
	out := make([]string, len(b))
	for i, c := range b {
		out[i] = c.s
	}
	return out
}

// appState is an Application: its instances and the services they provide
// and consume.
type appState struct {
	node
	labels                        map[string]string
	instances, provides, consumes bag
}

func (a *appState) join(m *member, d int) {
	a.members += d
	a.instances.put(m.inst.key, d)
	switch {
	case m.svc == nil:
	case m.provider:
		a.provides.put(m.svc.key, d)
	default:
		a.consumes.put(m.svc.key, d)
	}
}

func (a *appState) derive() (any, map[string]string, bool) {
	if a.members == 0 {
		return nil, nil, false
	}
	return Application{Name: a.key, Instances: a.instances.values(), Provides: a.provides.values(), Consumes: a.consumes.values()},
		a.labels, true
}

// instState is an Instance. Its spec depends on the order of its members
// (the first one; metadata merged in turn), so it keeps them in id order;
// an instance has few.
type instState struct {
	node
	app  *appState
	ip   string
	port int
	regs []*member // in id order
}

func cmpMember(m *member, id string) int { return strings.Compare(m.id, id) }

func (s *instState) join(m *member) {
	i, _ := slices.BinarySearchFunc(s.regs, m.id, cmpMember)
	s.regs = slices.Insert(s.regs, i, m)
	s.members++
}

func (s *instState) leave(m *member) {
	if i, ok := slices.BinarySearchFunc(s.regs, m.id, cmpMember); ok {
		s.regs = slices.Delete(s.regs, i, i+1)
		s.members--
	}
}

func (s *instState) derive() (any, map[string]string, bool) {
	if s.members == 0 {
		return nil, nil, false
	}
	in := Instance{Application: s.app.key, IP: s.ip, Port: s.port, Side: SideConsumer}
	var provides, consumes []string
	for _, m := range s.regs {
		switch {
		case m.provider:
			in.Side = SideProvider
			if m.svc != nil {
				provides = append(provides, m.svc.key)
			}
		default:
			consumes = append(consumes, m.svc.key) // a consumer always names a service
		}
		// The instance's own registration (application level) names the
		// protocol and metadata; interface-level URLs fill in the gaps.
		if m.protocol != "" && (in.Protocol == "" || m.svc == nil) {
			in.Protocol = m.protocol
		}
		in.Weight = max(in.Weight, m.weight)
		if !m.ts.IsZero() {
			if in.RegisteredAt.IsZero() || m.ts.Before(in.RegisteredAt) {
				in.RegisteredAt = m.ts
			}
			if m.ts.After(in.UpdatedAt) {
				in.UpdatedAt = m.ts
			}
		}
		if m.svc == nil && m.meta != nil {
			if in.Metadata == nil {
				in.Metadata = map[string]string{}
			}
			maps.Copy(in.Metadata, m.meta.md)
		}
	}
	in.Provides, in.Consumes = distinct(provides), distinct(consumes)
	return in, s.app.labels, true
}

// distinct sorts keys and drops repeats; nil when there are none.
func distinct(keys []string) []string {
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// svcState is a Service: its methods, providers, consumers and their
// applications.
type svcState struct {
	node
	labels                                      map[string]string
	iface, group, version                       string
	methods, providers, consumers, papps, capps bag
	// lastMethods is the methods of the last registration that joined,
	// which the next one shares when it lists the same (methodsOf).
	lastMethods []string
}

func (s *svcState) join(m *member, d int) {
	s.members += d
	if !m.provider {
		s.consumers.put(m.inst.key, d)
		s.capps.put(m.app.key, d)
		return
	}
	for _, name := range m.methods {
		s.methods.put(name, d)
	}
	s.providers.put(m.inst.key, d)
	s.papps.put(m.app.key, d)
}

func (s *svcState) derive() (any, map[string]string, bool) {
	if s.members == 0 {
		return nil, nil, false
	}
	return Service{
		Interface: s.iface, Group: s.group, Version: s.version,
		Methods: s.methods.values(), Providers: s.providers.values(), Consumers: s.consumers.values(),
		ProviderApplications: s.papps.values(), ConsumerApplications: s.capps.values(),
	}, s.labels, true
}
