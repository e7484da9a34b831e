package discovery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// NewView returns the view that derives Applications, Instances and Services
// from registrations. It is not safe for concurrent use: the sync loop owns it.
func NewView() source.View { return newView() }

type ref struct{ kind, key string }

type view struct {
	regs map[string]Registration
	// index: derived resource -> ids of the registrations it is made of.
	index map[ref]map[string]struct{}
	// written: the spec last handed to the store per derived resource, so
	// a registration change that alters nothing visible writes nothing.
	written map[ref][]byte
	// dirty: the derived resources changes were Added to since the last
	// Flush.
	dirty map[ref]struct{}
}

func newView() *view {
	return &view{
		regs:    map[string]Registration{},
		index:   map[ref]map[string]struct{}{},
		written: map[ref][]byte{},
		dirty:   map[ref]struct{}{},
	}
}

func (v *view) Kinds() []string { return []string{KindApplication, KindInstance, KindService} }

func (v *view) Reset(items []store.Resource) (map[string][]store.Resource, error) {
	*v = *newView()
	for _, it := range items {
		r, err := decodeRegistration(it)
		if err != nil {
			return nil, err
		}
		v.add(it.Key, r)
	}
	out := map[string][]store.Resource{}
	for _, rf := range slices.SortedFunc(maps.Keys(v.index), compareRef) {
		if res, ok := v.derive(rf); ok {
			v.written[rf] = res.Spec
			out[rf.kind] = append(out[rf.kind], res)
		}
	}
	return out, nil
}

// Apply folds in one change and returns the store changes it causes.
func (v *view) Apply(c source.Change) []source.Change {
	v.Add(c)
	return v.Flush()
}

// Add folds in one change; Flush returns what it changed in the store
// (source.BatchView), so that a batch re-derives each resource once.
func (v *view) Add(c source.Change) {
	if c.Resource.Kind != KindRegistration {
		return
	}
	id := c.Resource.Key
	if old, ok := v.regs[id]; ok {
		for _, rf := range refsOf(old) {
			v.dirty[rf] = struct{}{}
		}
		v.remove(id, old)
	}
	if c.Type == store.Upserted {
		r, err := decodeRegistration(c.Resource)
		if err == nil {
			v.add(id, r)
			for _, rf := range refsOf(r) {
				v.dirty[rf] = struct{}{}
			}
		}
	}
}

// Flush derives every resource changes were Added to since the last Flush
// and returns the store changes, in kind and key order.
func (v *view) Flush() []source.Change {
	var out []source.Change
	for _, rf := range slices.SortedFunc(maps.Keys(v.dirty), compareRef) {
		res, ok := v.derive(rf)
		prev, had := v.written[rf]
		switch {
		case ok && (!had || !bytes.Equal(prev, res.Spec)):
			v.written[rf] = res.Spec
			out = append(out, source.Upsert(res))
		case !ok && had:
			delete(v.written, rf)
			out = append(out, source.Delete(rf.kind, rf.key))
		}
	}
	clear(v.dirty)
	return out
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

// refsOf lists the derived resources a registration is part of.
func refsOf(r Registration) []ref {
	refs := []ref{{KindApplication, r.Application}, {KindInstance, r.instanceKey()}}
	if sk := r.serviceKey(); sk != "" {
		refs = append(refs, ref{KindService, sk})
	}
	return refs
}

func (v *view) add(id string, r Registration) {
	v.regs[id] = r
	for _, rf := range refsOf(r) {
		ids := v.index[rf]
		if ids == nil {
			ids = map[string]struct{}{}
			v.index[rf] = ids
		}
		ids[id] = struct{}{}
	}
}

func (v *view) remove(id string, r Registration) {
	delete(v.regs, id)
	for _, rf := range refsOf(r) {
		delete(v.index[rf], id)
		if len(v.index[rf]) == 0 {
			delete(v.index, rf)
		}
	}
}

// members returns the registrations of a derived resource: in id order for
// an Instance, whose spec depends on their order (the first one, metadata
// merged in turn); in any order for an Application or a Service, whose
// specs are sorted sets (an Application has every registration of its
// instances, so sorting them is most of its cost).
func (v *view) members(rf ref) []Registration {
	ids := v.index[rf]
	out := make([]Registration, 0, len(ids))
	if rf.kind != KindInstance {
		for id := range ids {
			out = append(out, v.regs[id])
		}
		return out
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		out = append(out, v.regs[id])
	}
	return out
}

// derive builds a derived resource; false when nothing makes it up.
func (v *view) derive(rf ref) (store.Resource, bool) {
	regs := v.members(rf)
	if len(regs) == 0 {
		return store.Resource{}, false
	}
	var spec any
	var labels map[string]string
	switch rf.kind {
	case KindApplication:
		spec = application(rf.key, regs)
		labels = map[string]string{LabelApplication: rf.key}
	case KindInstance:
		spec = instance(regs)
		labels = map[string]string{LabelApplication: regs[0].Application}
	case KindService:
		spec = service(regs)
		labels = map[string]string{LabelInterface: regs[0].Interface}
	}
	data, err := json.Marshal(spec)
	if err != nil {
		panic(fmt.Sprintf("discovery: marshal %s %s: %v", rf.kind, rf.key, err)) // plain structs always marshal
	}
	return store.Resource{Kind: rf.kind, Key: rf.key, Labels: labels, Spec: data}, true
}

func compareRef(a, b ref) int {
	if a.kind != b.kind {
		if a.kind < b.kind {
			return -1
		}
		return 1
	}
	switch {
	case a.key < b.key:
		return -1
	case a.key > b.key:
		return 1
	}
	return 0
}
