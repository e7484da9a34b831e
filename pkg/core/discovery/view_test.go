package discovery_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// reference derives the stored kinds from the registrations held, from
// scratch, as the view's contract states them: the oracle the incremental
// view is held to.
func reference(regs map[string]discovery.Registration) map[string]any {
	type agg struct {
		regs []discovery.Registration
	}
	apps, insts, svcs := map[string]*agg{}, map[string]*agg{}, map[string]*agg{}
	put := func(m map[string]*agg, k string, r discovery.Registration) {
		if m[k] == nil {
			m[k] = &agg{}
		}
		m[k].regs = append(m[k].regs, r)
	}
	for _, id := range slices.Sorted(maps.Keys(regs)) { // an Instance reads its registrations in id order
		r := regs[id]
		put(apps, r.Application, r)
		put(insts, discovery.InstanceKey(r.Application, r.IP, r.Port), r)
		if r.Interface != "" {
			put(svcs, discovery.ServiceKey(r.Group, r.Interface, r.Version), r)
		}
	}
	sorted := func(s map[string]bool) []string {
		delete(s, "")
		if len(s) == 0 {
			return nil
		}
		return slices.Sorted(maps.Keys(s))
	}
	svcKey := func(r discovery.Registration) string {
		if r.Interface == "" {
			return ""
		}
		return discovery.ServiceKey(r.Group, r.Interface, r.Version)
	}
	instKey := func(r discovery.Registration) string { return discovery.InstanceKey(r.Application, r.IP, r.Port) }
	out := map[string]any{}
	for name, a := range apps {
		is, ps, cs := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, r := range a.regs {
			is[instKey(r)] = true
			if r.Side == discovery.SideProvider {
				ps[svcKey(r)] = true
			} else {
				cs[svcKey(r)] = true
			}
		}
		out["Application/"+name] = discovery.Application{Name: name, Instances: sorted(is), Provides: sorted(ps), Consumes: sorted(cs)}
	}
	for key, a := range insts {
		f := a.regs[0]
		in := discovery.Instance{Application: f.Application, IP: f.IP, Port: f.Port, Side: discovery.SideConsumer}
		ps, cs := map[string]bool{}, map[string]bool{}
		for _, r := range a.regs {
			if r.Side == discovery.SideProvider {
				in.Side = discovery.SideProvider
				ps[svcKey(r)] = true
			} else {
				cs[svcKey(r)] = true
			}
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
		in.Provides, in.Consumes = sorted(ps), sorted(cs)
		out["Instance/"+key] = in
	}
	for key, a := range svcs {
		f := a.regs[0]
		s := discovery.Service{Interface: f.Interface, Group: f.Group, Version: f.Version}
		ms, ps, cs, pa, ca := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, r := range a.regs {
			if r.Side == discovery.SideProvider {
				for _, m := range r.Methods {
					ms[m] = true
				}
				ps[instKey(r)], pa[r.Application] = true, true
			} else {
				cs[instKey(r)], ca[r.Application] = true, true
			}
		}
		s.Methods, s.Providers, s.Consumers = sorted(ms), sorted(ps), sorted(cs)
		s.ProviderApplications, s.ConsumerApplications = sorted(pa), sorted(ca)
		out["Service/"+key] = s
	}
	return out
}

// decoded turns stored resources into the same shape as reference's.
func decoded(res map[string]store.Resource) map[string]any {
	out := map[string]any{}
	for k, r := range res {
		var v any
		switch r.Kind {
		case discovery.KindApplication:
			var a discovery.Application
			Expect(json.Unmarshal(r.Spec, &a)).To(Succeed())
			Expect(r.Labels).To(Equal(map[string]string{discovery.LabelApplication: a.Name}))
			v = a
		case discovery.KindInstance:
			var in discovery.Instance
			Expect(json.Unmarshal(r.Spec, &in)).To(Succeed())
			Expect(r.Labels).To(Equal(map[string]string{discovery.LabelApplication: in.Application}))
			v = in
		case discovery.KindService:
			var s discovery.Service
			Expect(json.Unmarshal(r.Spec, &s)).To(Succeed())
			Expect(r.Labels).To(Equal(map[string]string{discovery.LabelInterface: s.Interface}))
			v = s
		}
		out[k] = v
	}
	return out
}

var _ = Describe("The view under a random stream of registrations", func() {
	// A small registry with every shape the view derives: applications
	// with several instances, instances with several services (provided
	// and consumed) and an application-level registration with metadata,
	// services provided and consumed by several applications.
	random := func(rng *rand.Rand) (string, discovery.Registration) {
		app := fmt.Sprintf("app-%d", rng.IntN(4))
		ip := fmt.Sprintf("10.0.0.%d", rng.IntN(6))
		r := discovery.Registration{
			Application: app, IP: ip, Port: 20880 + rng.IntN(2), Protocol: []string{"", "dubbo", "tri"}[rng.IntN(3)],
			Weight: rng.IntN(3) * 50, Timestamp: time.UnixMilli(1714550000000 + int64(rng.IntN(5))*1000).UTC(),
		}
		switch rng.IntN(4) {
		case 0: // the instance itself (application level)
			r.Side = discovery.SideProvider
			r.Metadata = map[string]string{"revision": fmt.Sprint(rng.IntN(3)), fmt.Sprintf("k%d", rng.IntN(2)): "v"}
			return fmt.Sprintf("/services/%s/%s:%d", app, ip, r.Port), r
		case 1:
			r.Side = discovery.SideConsumer
		default:
			r.Side = discovery.SideProvider
			r.Methods = [][]string{{"get"}, {"get", "put"}, {"put", "put"}}[rng.IntN(3)]
		}
		r.Interface = fmt.Sprintf("org.example.S%d", rng.IntN(5))
		r.Version = []string{"", "1.0.0"}[rng.IntN(2)]
		r.Group = []string{"", "g"}[rng.IntN(2)]
		return fmt.Sprintf("/dubbo/%s/%ss/%s:%d@%s", r.Interface, r.Side, ip, r.Port, r.Group+r.Version), r
	}

	for seed := range uint64(20) {
		It(fmt.Sprintf("ends, batch after batch, where a derivation from scratch ends (seed %d)", seed), func() {
			rng := rand.New(rand.NewPCG(seed, 7))
			held := map[string]discovery.Registration{}
			var initial []store.Resource
			for range 30 {
				id, r := random(rng)
				if _, dup := held[id]; dup {
					continue
				}
				held[id] = r
				res, err := discovery.NewRegistration(id, r)
				Expect(err).NotTo(HaveOccurred())
				initial = append(initial, res)
			}
			v := discovery.NewView().(source.BatchView)
			byKind, err := v.Reset(initial)
			Expect(err).NotTo(HaveOccurred())
			stored := map[string]store.Resource{}
			for _, items := range byKind {
				for _, r := range items {
					stored[r.Kind+"/"+r.Key] = r
				}
			}
			Expect(decoded(stored)).To(Equal(reference(held)))

			for batch := range 60 {
				for range 1 + rng.IntN(8) {
					id, r := random(rng)
					if _, ok := held[id]; ok && rng.IntN(2) == 0 {
						delete(held, id)
						v.Add(source.Delete(discovery.KindRegistration, id))
						continue
					}
					held[id] = r
					res, err := discovery.NewRegistration(id, r)
					Expect(err).NotTo(HaveOccurred())
					v.Add(source.Upsert(res))
				}
				seen := map[string]bool{}
				for _, c := range v.Flush() {
					k := c.Resource.Kind + "/" + c.Resource.Key
					Expect(seen).NotTo(HaveKey(k), "batch %d changes %s twice", batch, k)
					seen[k] = true
					if c.Type == store.Deleted {
						Expect(stored).To(HaveKey(k), "batch %d deletes %s, which it never wrote", batch, k)
						delete(stored, k)
						continue
					}
					if old, ok := stored[k]; ok {
						Expect(c.Resource.Spec).NotTo(MatchJSON(old.Spec), "batch %d rewrites %s unchanged", batch, k)
					}
					stored[k] = c.Resource
				}
				Expect(decoded(stored)).To(Equal(reference(held)), "after batch %d", batch)
			}
		})
	}
})
