package discovery

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"
	"strings"
	"unique"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// NewView returns the view that derives Applications, Instances and Services
// from registrations. It is not safe for concurrent use: the sync loop owns it.
//
// It keeps, per derived resource, the state its spec is made of (derive.go):
// a registration that comes or goes updates the states of the three
// resources it is part of, and Flush derives only those, so the cost of a
// change does not grow with the size of its application or service. The
// view keeps a 64-bit digest of each spec it handed to the store, not the
// spec: a change that alters nothing visible writes nothing. Two different
// specs of one resource with the same digest (odds 2⁻⁶⁴ per change) would
// leave the stored one stale until the next relist, whose Replace compares
// the specs themselves.
func NewView() source.View { return newView() }

type view struct {
	seed  maphash.Seed
	regs  map[string]*member
	apps  map[string]*appState
	insts map[string]*instState
	svcs  map[string]*svcState
	metas map[string]*sharedMeta
	// dirty: the states changes were Added to since the last Flush (each
	// once: node.dirty).
	dirty []state
}

func newView() *view {
	return &view{
		seed:  maphash.MakeSeed(),
		regs:  map[string]*member{},
		apps:  map[string]*appState{},
		insts: map[string]*instState{},
		svcs:  map[string]*svcState{},
		metas: map[string]*sharedMeta{},
	}
}

func (v *view) Kinds() []string { return []string{KindApplication, KindInstance, KindService} }

func (v *view) Reset(items []store.Resource) (map[string][]store.Resource, error) {
	*v = *newView()
	for i, it := range items {
		r, err := decodeRegistration(it)
		if err != nil {
			return nil, err
		}
		if old, ok := v.regs[it.Key]; ok {
			v.remove(old)
		}
		v.add(it.Key, r)
		items[i] = store.Resource{} // handed over: its spec is not needed any more
	}
	// Every state is dirty once, and none was written yet.
	out := map[string][]store.Resource{
		KindApplication: make([]store.Resource, 0, len(v.apps)),
		KindInstance:    make([]store.Resource, 0, len(v.insts)),
		KindService:     make([]store.Resource, 0, len(v.svcs)),
	}
	v.flush(func(c source.Change) { out[c.Resource.Kind] = append(out[c.Resource.Kind], c.Resource) })
	return out, nil
}

// Apply folds in one change and returns the store changes it causes.
func (v *view) Apply(c source.Change) []source.Change {
	v.Add(c)
	return v.Flush()
}

// Add folds in one change; Flush returns what it changed in the store
// (source.BatchView), so that a batch derives each resource once.
func (v *view) Add(c source.Change) {
	if c.Resource.Kind != KindRegistration {
		return
	}
	id := c.Resource.Key
	if old, ok := v.regs[id]; ok {
		v.remove(old)
	}
	if c.Type == store.Upserted {
		if r, err := decodeRegistration(c.Resource); err == nil {
			v.add(id, r)
		}
	}
}

// Flush derives every resource changes were Added to since the last Flush
// and returns the store changes, in kind and key order.
func (v *view) Flush() []source.Change {
	var out []source.Change
	v.flush(func(c source.Change) { out = append(out, c) })
	return out
}

func (v *view) flush(emit func(source.Change)) {
	slices.SortFunc(v.dirty, func(a, b state) int {
		x, y := a.head(), b.head()
		if c := strings.Compare(x.kind, y.kind); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})
	for _, s := range v.dirty {
		n := s.head()
		n.dirty = false
		spec, labels, ok := s.derive()
		switch {
		case ok:
			data, err := json.Marshal(spec)
			if err != nil {
				panic(fmt.Sprintf("discovery: marshal %s %s: %v", n.kind, n.key, err)) // plain structs always marshal
			}
			if d := maphash.Bytes(v.seed, data); !n.written || d != n.digest {
				n.written, n.digest = true, d
				emit(source.Upsert(store.Resource{Kind: n.kind, Key: n.key, Labels: labels, Spec: data}))
			}
		case n.written:
			n.written = false
			emit(source.Delete(n.kind, n.key))
		}
		if n.members == 0 {
			v.drop(n)
		}
	}
	clear(v.dirty)
	v.dirty = v.dirty[:0]
}

// touch marks s to be derived at the next Flush.
func (v *view) touch(s state) {
	if n := s.head(); !n.dirty {
		n.dirty = true
		v.dirty = append(v.dirty, s)
	}
}

// drop forgets the state of a resource nothing makes up any more. It is
// kept until the Flush after its last member left, so that a member that
// comes back within the batch finds what was written.
func (v *view) drop(n *node) {
	switch n.kind {
	case KindApplication:
		delete(v.apps, n.key)
	case KindInstance:
		delete(v.insts, n.key)
	case KindService:
		delete(v.svcs, n.key)
	}
}

func decodeRegistration(res store.Resource) (Registration, error) {
	var r Registration
	if err := json.Unmarshal(res.Spec, &r); err != nil {
		return r, fmt.Errorf("registration %s: %w", res.Key, err)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("registration %s: %w", res.Key, err)
	}
	return r, nil
}

// intern returns the one copy of s the process keeps while it is in use:
// a registry repeats its applications, interfaces, versions and methods in
// every registration.
func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// add makes registration r, by id, part of its application, instance and
// service (creating their states) and marks them to be derived.
func (v *view) add(id string, r Registration) {
	app := v.apps[r.Application]
	if app == nil {
		name := intern(r.Application)
		app = &appState{node: node{kind: KindApplication, key: name}, labels: map[string]string{LabelApplication: name}}
		v.apps[name] = app
	}
	ik := InstanceKey(r.Application, r.IP, r.Port)
	inst := v.insts[ik]
	if inst == nil {
		inst = &instState{node: node{kind: KindInstance, key: ik}, app: app, ip: r.IP, port: r.Port}
		v.insts[ik] = inst
	}
	m := &member{
		id: id, app: app, inst: inst, provider: r.Side == SideProvider,
		protocol: intern(r.Protocol), weight: r.Weight, ts: r.Timestamp, meta: v.shareMeta(r.Metadata),
	}
	if sk := r.serviceKey(); sk != "" {
		svc := v.svcs[sk]
		if svc == nil {
			iface := intern(r.Interface)
			svc = &svcState{node: node{kind: KindService, key: sk}, labels: map[string]string{LabelInterface: iface},
				iface: iface, group: intern(r.Group), version: intern(r.Version)}
			v.svcs[sk] = svc
		}
		m.svc = svc
	}
	m.methods = methodsOf(m.svc, r.Methods)
	v.regs[id] = m
	app.join(m, 1)
	inst.join(m)
	if m.svc != nil {
		m.svc.join(m, 1)
	}
	v.touch(app)
	v.touch(inst)
	if m.svc != nil {
		v.touch(m.svc)
	}
}

// methodsOf returns the methods a registration of svc lists, interned: the
// slice of the service's last registration when they are the same (the
// providers of a service list the same methods).
func methodsOf(svc *svcState, methods []string) []string {
	if len(methods) == 0 {
		return nil
	}
	if svc != nil && slices.Equal(methods, svc.lastMethods) {
		return svc.lastMethods
	}
	out := make([]string, len(methods))
	for i, name := range methods {
		out[i] = intern(name)
	}
	if svc != nil {
		svc.lastMethods = out
	}
	return out
}

// shareMeta returns the one copy of metadata md the view keeps for every
// registration that has it (an application's instances mostly share
// theirs); nil when md is empty. releaseMeta drops a reference.
func (v *view) shareMeta(md map[string]string) *sharedMeta {
	if len(md) == 0 {
		return nil
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(md)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(md[k])
		b.WriteByte(0)
	}
	key := b.String()
	sm := v.metas[key]
	if sm == nil {
		sm = &sharedMeta{key: key, md: md}
		v.metas[key] = sm
	}
	sm.refs++
	return sm
}

func (v *view) releaseMeta(sm *sharedMeta) {
	if sm == nil {
		return
	}
	if sm.refs--; sm.refs == 0 {
		delete(v.metas, sm.key)
	}
}

// remove undoes add.
func (v *view) remove(m *member) {
	delete(v.regs, m.id)
	v.releaseMeta(m.meta)
	m.app.join(m, -1)
	m.inst.leave(m)
	v.touch(m.app)
	v.touch(m.inst)
	if m.svc != nil {
		m.svc.join(m, -1)
		v.touch(m.svc)
	}
}
