package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

func res(kind, key string, labels map[string]string, spec string) store.Resource {
	return store.Resource{Kind: kind, Key: key, Labels: labels, Spec: json.RawMessage(spec)}
}

// content is what a caller chose for a resource, to compare regardless of
// the fields the store sets.
type content struct {
	Kind, Key string
	Labels    map[string]string
	Spec      string
}

func contentOf(rs ...store.Resource) []content {
	out := make([]content, 0, len(rs))
	for _, r := range rs {
		out = append(out, content{r.Kind, r.Key, r.Labels, string(r.Spec)})
	}
	return out
}

func listAll(ctx context.Context, s store.ResourceStore, kind string, opts store.ListOptions) []store.Resource {
	GinkgoHelper()
	var out []store.Resource
	for {
		page, err := s.List(ctx, kind, opts)
		Expect(err).NotTo(HaveOccurred())
		out = append(out, page.Items...)
		if page.Continue == "" {
			return out
		}
		Expect(page.Items).To(HaveLen(opts.Limit), "only the last page may be short")
		opts.Continue = page.Continue
	}
}

// conformance registers the specs every backend passes.
func conformance(b *backend) {
	var (
		ctx  context.Context
		kind string
	)
	BeforeEach(func() {
		ctx = store.Unfenced(context.Background())
		kind = unique("kind")
	})

	It("reports whether several replicas can share it", func() {
		Expect(b.store.Shared()).To(Equal(b.sql()))
	})

	Describe("Upsert, Get and Delete", func() {
		It("gets what it upserts, with the version bumped on every write", func() {
			before := time.Now().Add(-time.Second)
			out, err := b.store.Upsert(ctx, res(kind, "a", map[string]string{"app": "shop"}, `{"port": 20880}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(out.ResourceVersion).To(Equal(int64(1)))
			Expect(out.Term).To(BeZero(), "an unfenced write carries no term")
			Expect(out.UpdatedAt).To(BeTemporally(">", before))
			Expect(string(out.Spec)).To(Equal(`{"port":20880}`), "the spec is stored compacted")

			got, err := b.store.Get(ctx, kind, "a")
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Labels).To(Equal(map[string]string{"app": "shop"}))
			Expect(string(got.Spec)).To(Equal(`{"port":20880}`))
			Expect(got.ResourceVersion).To(Equal(int64(1)))
			Expect(got.UpdatedAt.Equal(out.UpdatedAt)).To(BeTrue())

			for v := int64(2); v <= 3; v++ {
				out, err = b.store.Upsert(ctx, res(kind, "a", nil, `{"port":20881}`))
				Expect(err).NotTo(HaveOccurred())
				Expect(out.ResourceVersion).To(Equal(v))
			}
			got, err = b.store.Get(ctx, kind, "a")
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Labels).To(BeEmpty())
			Expect(got.ResourceVersion).To(Equal(int64(3)))
		})

		It("does not share memory with the caller", func() {
			in := res(kind, "a", map[string]string{"x": "1"}, `{"a":1}`)
			_, err := b.store.Upsert(ctx, in)
			Expect(err).NotTo(HaveOccurred())
			in.Labels["x"] = "changed"
			got, err := b.store.Get(ctx, kind, "a")
			Expect(err).NotTo(HaveOccurred())
			got.Labels["x"] = "changed too"
			again, err := b.store.Get(ctx, kind, "a")
			Expect(err).NotTo(HaveOccurred())
			Expect(again.Labels).To(Equal(map[string]string{"x": "1"}))
		})

		It("deletes, and reports ErrNotFound for what is not there", func() {
			_, err := b.store.Upsert(ctx, res(kind, "a", nil, `1`))
			Expect(err).NotTo(HaveOccurred())
			Expect(b.store.Delete(ctx, kind, "a")).To(Succeed())
			_, err = b.store.Get(ctx, kind, "a")
			Expect(err).To(MatchError(store.ErrNotFound))
			Expect(b.store.Delete(ctx, kind, "a")).To(MatchError(store.ErrNotFound))
			_, err = b.store.Get(ctx, unique("other"), "a")
			Expect(err).To(MatchError(store.ErrNotFound))
		})

		It("keeps kinds apart", func() {
			other := unique("kind")
			_, err := b.store.Upsert(ctx, res(kind, "a", nil, `"one"`))
			Expect(err).NotTo(HaveOccurred())
			_, err = b.store.Upsert(ctx, res(other, "a", nil, `"two"`))
			Expect(err).NotTo(HaveOccurred())
			got, err := b.store.Get(ctx, kind, "a")
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got.Spec)).To(Equal(`"one"`))
			Expect(listAll(ctx, b.store, other, store.ListOptions{})).To(HaveLen(1))
		})
	})

	Describe("List", func() {
		BeforeEach(func() {
			for i := range 25 {
				tier := []string{"web", "db"}[i%2]
				labels := map[string]string{"tier": tier, "zone": fmt.Sprintf("z%d", i%3)}
				_, err := b.store.Upsert(ctx, res(kind, fmt.Sprintf("k%02d", 24-i), labels, fmt.Sprintf(`{"i":%d}`, i)))
				Expect(err).NotTo(HaveOccurred())
			}
		})

		keys := func(rs []store.Resource) []string {
			out := make([]string, 0, len(rs))
			for _, r := range rs {
				out = append(out, r.Key)
			}
			return out
		}

		It("returns the kind in key order", func() {
			page, err := b.store.List(ctx, kind, store.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(page.Continue).To(BeEmpty())
			Expect(page.Items).To(HaveLen(25))
			Expect(page.Items[0].Key).To(Equal("k00"))
			Expect(page.Items[24].Key).To(Equal("k24"))
			Expect(keys(page.Items)).To(BeEquivalentTo(sortedCopy(keys(page.Items))))
		})

		It("pages with an opaque continue token", func() {
			first, err := b.store.List(ctx, kind, store.ListOptions{Limit: 10})
			Expect(err).NotTo(HaveOccurred())
			Expect(first.Items).To(HaveLen(10))
			Expect(first.Continue).NotTo(BeEmpty())
			Expect(first.Continue).NotTo(ContainSubstring("k09"))
			all := listAll(ctx, b.store, kind, store.ListOptions{Limit: 10})
			Expect(all).To(HaveLen(25))
			Expect(keys(all)[10]).To(Equal("k10"))
			exact := listAll(ctx, b.store, kind, store.ListOptions{Limit: 25})
			Expect(exact).To(HaveLen(25))
		})

		It("selects by every given label, across pages", func() {
			web := listAll(ctx, b.store, kind, store.ListOptions{Labels: map[string]string{"tier": "web"}})
			Expect(web).To(HaveLen(13))
			paged := listAll(ctx, b.store, kind, store.ListOptions{Labels: map[string]string{"tier": "web"}, Limit: 4})
			Expect(keys(paged)).To(Equal(keys(web)))
			both := listAll(ctx, b.store, kind, store.ListOptions{Labels: map[string]string{"tier": "web", "zone": "z0"}, Limit: 2})
			for _, r := range both {
				Expect(r.Labels).To(HaveKeyWithValue("tier", "web"))
				Expect(r.Labels).To(HaveKeyWithValue("zone", "z0"))
			}
			Expect(both).To(HaveLen(5))
			none := listAll(ctx, b.store, kind, store.ListOptions{Labels: map[string]string{"tier": "cache"}, Limit: 3})
			Expect(none).To(BeEmpty())
		})

		It("returns an empty page for an unknown kind", func() {
			page, err := b.store.List(ctx, unique("nothing"), store.ListOptions{Limit: 5})
			Expect(err).NotTo(HaveOccurred())
			Expect(page.Items).To(BeEmpty())
			Expect(page.Continue).To(BeEmpty())
		})
	})

	Describe("Replace", func() {
		It("adds, updates and deletes exactly what differs", func() {
			_, err := b.store.Replace(ctx, kind, []store.Resource{
				res("", "keep", map[string]string{"a": "1"}, `{"v":1}`),
				res(kind, "relabel", map[string]string{"a": "1"}, `{"v":1}`),
				res(kind, "respec", nil, `{"v":1}`),
				res(kind, "drop1", nil, `{}`),
				res(kind, "drop2", nil, `{}`),
			})
			Expect(err).NotTo(HaveOccurred())

			result, err := b.store.Replace(ctx, kind, []store.Resource{
				res(kind, "keep", map[string]string{"a": "1"}, `{ "v" : 1 }`),
				res(kind, "relabel", map[string]string{"a": "2"}, `{"v":1}`),
				res(kind, "respec", nil, `{"v":2}`),
				res(kind, "new1", nil, `[]`),
				res(kind, "new2", nil, `null`),
				res(kind, "new3", nil, `"x"`),
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Added: 3, Updated: 2, Deleted: 2}))

			all := listAll(ctx, b.store, kind, store.ListOptions{})
			Expect(contentOf(all...)).To(Equal([]content{
				{kind, "keep", map[string]string{"a": "1"}, `{"v":1}`},
				{kind, "new1", nil, `[]`},
				{kind, "new2", nil, `null`},
				{kind, "new3", nil, `"x"`},
				{kind, "relabel", map[string]string{"a": "2"}, `{"v":1}`},
				{kind, "respec", nil, `{"v":2}`},
			}))
			versions := map[string]int64{}
			for _, r := range all {
				versions[r.Key] = r.ResourceVersion
			}
			Expect(versions).To(Equal(map[string]int64{"keep": 1, "new1": 1, "new2": 1, "new3": 1, "relabel": 2, "respec": 2}))

			again, err := b.store.Replace(ctx, kind, []store.Resource{
				res(kind, "keep", map[string]string{"a": "1"}, `{"v":1}`),
				res(kind, "relabel", map[string]string{"a": "2"}, `{"v":1}`),
				res(kind, "respec", nil, `{"v":2}`),
				res(kind, "new1", nil, `[]`),
				res(kind, "new2", nil, `null`),
				res(kind, "new3", nil, `"x"`),
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(again).To(Equal(store.ReplaceResult{}), "an identical relist writes nothing")

			emptied, err := b.store.Replace(ctx, kind, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(emptied).To(Equal(store.ReplaceResult{Deleted: 6}))
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(BeEmpty())
		})

		It("leaves other kinds alone", func() {
			other := unique("kind")
			_, err := b.store.Upsert(ctx, res(other, "x", nil, `1`))
			Expect(err).NotTo(HaveOccurred())
			_, err = b.store.Replace(ctx, kind, []store.Resource{res(kind, "y", nil, `2`)})
			Expect(err).NotTo(HaveOccurred())
			Expect(listAll(ctx, b.store, other, store.ListOptions{})).To(HaveLen(1))
		})

		It("takes 10k resources in one call", func(sctx SpecContext) {
			items := make([]store.Resource, 10_000)
			for i := range items {
				items[i] = res(kind, fmt.Sprintf("instance-%05d", i),
					map[string]string{"app": fmt.Sprintf("app-%d", i%50)},
					fmt.Sprintf(`{"ip":"10.0.%d.%d","port":20880}`, i/256, i%256))
			}
			result, err := b.store.Replace(ctx, kind, items)
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Added: 10_000}))

			// Change every third, drop the last 1000, add 1000 new.
			next := make([]store.Resource, 0, 10_000)
			for i, it := range items[:9000] {
				if i%3 == 0 {
					it.Spec = json.RawMessage(fmt.Sprintf(`{"ip":"10.1.%d.%d","port":20880}`, i/256, i%256))
				}
				next = append(next, it)
			}
			for i := range 1000 {
				next = append(next, res(kind, fmt.Sprintf("new-%04d", i), nil, `{}`))
			}
			result, err = b.store.Replace(ctx, kind, next)
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Added: 1000, Updated: 3000, Deleted: 1000}))

			all := listAll(ctx, b.store, kind, store.ListOptions{Limit: 2500})
			Expect(all).To(HaveLen(10_000))
			Expect(listAll(ctx, b.store, kind, store.ListOptions{Labels: map[string]string{"app": "app-7"}})).To(HaveLen(180))
		}, NodeTimeout(3*time.Minute))
	})

	Describe("Apply", func() {
		It("makes a batch of changes of several kinds, the last change of a key counting", func() {
			other := unique("kind")
			_, err := b.store.Replace(ctx, kind, []store.Resource{
				res(kind, "same", nil, `{"v":1}`),
				res(kind, "respec", nil, `{"v":1}`),
				res(kind, "drop", nil, `{}`),
				res(kind, "churn", nil, `{}`),
			})
			Expect(err).NotTo(HaveOccurred())
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := b.store.Subscribe(sctx)

			result, err := b.store.Apply(ctx, []store.Change{
				{Type: store.Upserted, Resource: res(kind, "same", nil, `{ "v": 1 }`)},
				{Type: store.Upserted, Resource: res(kind, "respec", nil, `{"v":2}`)},
				{Type: store.Upserted, Resource: res(kind, "respec", map[string]string{"a": "1"}, `{"v":3}`)},
				{Type: store.Deleted, Resource: store.Resource{Kind: kind, Key: "drop"}},
				{Type: store.Deleted, Resource: store.Resource{Kind: kind, Key: "missing"}},
				{Type: store.Deleted, Resource: store.Resource{Kind: kind, Key: "churn"}},
				{Type: store.Upserted, Resource: res(kind, "churn", nil, `{"back":true}`)},
				{Type: store.Upserted, Resource: res(kind, "gone", nil, `{}`)},
				{Type: store.Deleted, Resource: store.Resource{Kind: kind, Key: "gone"}},
				{Type: store.Upserted, Resource: res(other, "x", nil, `1`)},
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Added: 1, Updated: 2, Deleted: 1}))

			all := listAll(ctx, b.store, kind, store.ListOptions{})
			Expect(contentOf(all...)).To(Equal([]content{
				{kind, "churn", nil, `{"back":true}`},
				{kind, "respec", map[string]string{"a": "1"}, `{"v":3}`},
				{kind, "same", nil, `{"v":1}`},
			}))
			versions := map[string]int64{}
			for _, r := range all {
				versions[r.Key] = r.ResourceVersion
			}
			Expect(versions).To(Equal(map[string]int64{"churn": 2, "respec": 2, "same": 1}), "one version bump per batch")
			Expect(contentOf(listAll(ctx, b.store, other, store.ListOptions{})...)).To(Equal([]content{{other, "x", nil, `1`}}))

			type seen struct {
				Type store.EventType
				Key  string
			}
			var got []seen
			Eventually(func() []seen {
				for {
					select {
					case e := <-events:
						got = append(got, seen{e.Type, e.Resource.Key})
					default:
						return got
					}
				}
			}).WithTimeout(10 * time.Second).Should(ConsistOf(
				seen{store.Upserted, "churn"}, seen{store.Upserted, "respec"}, seen{store.Deleted, "drop"}, seen{store.Upserted, "x"},
			))

			again, err := b.store.Apply(ctx, []store.Change{{Type: store.Upserted, Resource: res(kind, "same", nil, `{"v":1}`)}})
			Expect(err).NotTo(HaveOccurred())
			Expect(again).To(Equal(store.ReplaceResult{}), "an unchanged upsert writes nothing")
			empty, err := b.store.Apply(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(empty).To(Equal(store.ReplaceResult{}))
		})

		It("takes 10k changes in one call", func() {
			changes := make([]store.Change, 0, 10_000)
			for i := range 10_000 {
				changes = append(changes, store.Change{Type: store.Upserted, Resource: res(kind, fmt.Sprintf("instance-%05d", i),
					map[string]string{"app": fmt.Sprintf("app-%d", i%50)}, fmt.Sprintf(`{"port":%d}`, i))})
			}
			result, err := b.store.Apply(ctx, changes)
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Added: 10_000}))
			for i := range changes {
				if i%2 == 0 {
					changes[i] = store.Change{Type: store.Deleted, Resource: store.Resource{Kind: kind, Key: changes[i].Resource.Key}}
				} else {
					changes[i].Resource.Spec = []byte(`{"moved":true}`)
				}
			}
			result, err = b.store.Apply(ctx, changes)
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Updated: 5000, Deleted: 5000}))
			Expect(listAll(ctx, b.store, kind, store.ListOptions{Limit: 2500})).To(HaveLen(5000))
		})

		It("rejects a bad change with ErrInvalid and writes nothing", func() {
			for _, bad := range []store.Change{
				{Type: store.Upserted, Resource: res(kind, "b", nil, `{not json`)},
				{Type: store.Deleted, Resource: store.Resource{Kind: kind}},
				{Type: "renamed", Resource: res(kind, "b", nil, `{}`)},
			} {
				_, err := b.store.Apply(ctx, []store.Change{{Type: store.Upserted, Resource: res(kind, "a", nil, `{}`)}, bad})
				Expect(err).To(MatchError(store.ErrInvalid))
				Expect(err.Error()).To(ContainSubstring("changes[1]"))
			}
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(BeEmpty())
		})
	})

	Describe("bad input", func() {
		long := strings.Repeat("x", store.MaxKeyLength+1)
		DescribeTable("Upsert rejects it with ErrInvalid and writes nothing",
			func(r store.Resource, names string) {
				if r.Kind == "KIND" {
					r.Kind = kind
				}
				_, err := b.store.Upsert(ctx, r)
				Expect(err).To(MatchError(store.ErrInvalid))
				Expect(err.Error()).To(ContainSubstring(names))
				Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(BeEmpty())
			},
			Entry("empty kind", res("", "a", nil, `{}`), "kind is empty"),
			Entry("empty key", res("KIND", "", nil, `{}`), "key is empty"),
			Entry("oversized key", res("KIND", long, nil, `{}`), "key is 513 bytes"),
			Entry("oversized kind", res(strings.Repeat("k", store.MaxKindLength+1), "a", nil, `{}`), "kind is 129 bytes"),
			Entry("key with trailing space", res("KIND", "a ", nil, `{}`), "white space"),
			Entry("key with a control character", res("KIND", "a\x00b", nil, `{}`), "control characters"),
			Entry("key that is not UTF-8", res("KIND", "a\xffb", nil, `{}`), "not valid UTF-8"),
			Entry("spec that is not JSON", res("KIND", "a", nil, `{"a":`), "spec is not valid JSON"),
			Entry("empty spec", res("KIND", "a", nil, ``), "spec is empty"),
			Entry("oversized spec", res("KIND", "a", nil, `"`+strings.Repeat("s", store.MaxSpecSize)+`"`), "spec is"),
			Entry("empty label name", res("KIND", "a", map[string]string{"": "v"}, `{}`), "label name is empty"),
			Entry("oversized label value", res("KIND", "a", map[string]string{"n": strings.Repeat("v", store.MaxLabelValueLength+1)}, `{}`), `label "n" value is 1025 bytes`),
			Entry("too many labels", res("KIND", "a", manyLabels(store.MaxLabels+1), `{}`), "65 labels"),
			Entry("labels too large in all", res("KIND", "a", bigLabels(), `{}`), "labels take"),
		)

		It("rejects bad Replace items, List options and Get/Delete names", func() {
			_, err := b.store.Replace(ctx, kind, []store.Resource{res(kind, "a", nil, `{}`), res(unique("other"), "b", nil, `{}`)})
			Expect(err).To(MatchError(store.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring("items[1] has kind"))
			_, err = b.store.Replace(ctx, kind, []store.Resource{res(kind, "a", nil, `{}`), res(kind, "a", nil, `{}`)})
			Expect(err).To(MatchError(store.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring("same key"))
			_, err = b.store.Replace(ctx, kind, []store.Resource{res(kind, "a", nil, `{}`), res(kind, "b", nil, `nope`)})
			Expect(err).To(MatchError(store.ErrInvalid))
			Expect(err.Error()).To(ContainSubstring("items[1]"))
			_, err = b.store.Replace(ctx, "", nil)
			Expect(err).To(MatchError(store.ErrInvalid))
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(BeEmpty())

			_, err = b.store.List(ctx, kind, store.ListOptions{Limit: -1})
			Expect(err).To(MatchError(store.ErrInvalid))
			_, err = b.store.List(ctx, kind, store.ListOptions{Continue: "not base64!"})
			Expect(err).To(MatchError(store.ErrInvalid))
			_, err = b.store.List(ctx, "", store.ListOptions{})
			Expect(err).To(MatchError(store.ErrInvalid))
			_, err = b.store.Get(ctx, kind, "")
			Expect(err).To(MatchError(store.ErrInvalid))
			Expect(b.store.Delete(ctx, "", "a")).To(MatchError(store.ErrInvalid))
		})
	})

	Describe("write permission", func() {
		It("refuses a write with neither a term nor Unfenced", func() {
			bare := context.Background()
			_, err := b.store.Upsert(bare, res(kind, "a", nil, `{}`))
			Expect(err).To(MatchError(store.ErrNoTerm))
			_, err = b.store.Replace(bare, kind, []store.Resource{res(kind, "a", nil, `{}`)})
			Expect(err).To(MatchError(store.ErrNoTerm))
			_, err = b.store.Upsert(ctx, res(kind, "a", nil, `{}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(b.store.Delete(bare, kind, "a")).To(MatchError(store.ErrNoTerm))
			_, err = b.store.Apply(bare, []store.Change{{Type: store.Deleted, Resource: res(kind, "a", nil, `{}`)}})
			Expect(err).To(MatchError(store.ErrNoTerm))
			_, err = b.store.Apply(bare, nil)
			Expect(err).To(MatchError(store.ErrNoTerm))
			_, err = b.store.Get(bare, kind, "a")
			Expect(err).NotTo(HaveOccurred(), "reads need no term")
		})

		It("stamps the term of a term-carrying write", func() {
			tctx, term := b.termCtx(context.Background())
			out, err := b.store.Upsert(tctx, res(kind, "a", nil, `{}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(out.Term).To(Equal(term.Number))
			_, err = b.store.Replace(tctx, kind, []store.Resource{res(kind, "a", nil, `{}`), res(kind, "b", nil, `{}`)})
			Expect(err).NotTo(HaveOccurred())
			got, err := b.store.Get(ctx, kind, "b")
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Term).To(Equal(term.Number))
			Expect(b.store.Delete(tctx, kind, "b")).To(Succeed())
			_, err = b.store.Apply(tctx, []store.Change{{Type: store.Upserted, Resource: res(kind, "c", nil, `{}`)}})
			Expect(err).NotTo(HaveOccurred())
			got, err = b.store.Get(ctx, kind, "c")
			Expect(err).NotTo(HaveOccurred())
			Expect(got.Term).To(Equal(term.Number))
		})
	})

	Describe("Subscribe and Reset", func() {
		It("delivers this replica's changes in commit order until ctx ends", func() {
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := b.store.Subscribe(sctx)

			_, err := b.store.Upsert(ctx, res(kind, "a", nil, `1`))
			Expect(err).NotTo(HaveOccurred())
			_, err = b.store.Upsert(ctx, res(kind, "a", nil, `2`))
			Expect(err).NotTo(HaveOccurred())
			Expect(b.store.Delete(ctx, kind, "a")).To(Succeed())
			_, err = b.store.Replace(ctx, kind, []store.Resource{res(kind, "b", nil, `3`)})
			Expect(err).NotTo(HaveOccurred())

			type seen struct {
				Type    store.EventType
				Key     string
				Spec    string
				Version int64
			}
			var got []seen
			Eventually(func() []seen {
				for {
					select {
					case e := <-events:
						got = append(got, seen{e.Type, e.Resource.Key, string(e.Resource.Spec), e.Resource.ResourceVersion})
					default:
						return got
					}
				}
			}).WithTimeout(10 * time.Second).Should(Equal([]seen{
				{store.Upserted, "a", "1", 1},
				{store.Upserted, "a", "2", 2},
				{store.Deleted, "a", "2", 2},
				{store.Upserted, "b", "3", 1},
			}))

			cancel()
			Eventually(events).WithTimeout(10 * time.Second).Should(BeClosed())
		})

		It("does not deliver writes that failed", func() {
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := b.store.Subscribe(sctx)
			_, err := b.store.Upsert(context.Background(), res(kind, "a", nil, `1`))
			Expect(err).To(MatchError(store.ErrNoTerm))
			Expect(b.store.Delete(ctx, kind, "missing")).To(MatchError(store.ErrNotFound))
			Consistently(events).WithTimeout(100 * time.Millisecond).ShouldNot(Receive())
		})

		It("closes a subscription from a context that already ended", func() {
			sctx, cancel := context.WithCancel(context.Background())
			cancel()
			Expect(b.store.Subscribe(sctx)).To(BeClosed())
		})

		It("Reset ends the subscriptions and keeps the rows", func() {
			_, err := b.store.Replace(ctx, kind, []store.Resource{res(kind, "a", nil, `1`), res(kind, "b", nil, `2`)})
			Expect(err).NotTo(HaveOccurred())
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := b.store.Subscribe(sctx)
			_, err = b.store.Upsert(ctx, res(kind, "c", nil, `3`))
			Expect(err).NotTo(HaveOccurred())

			Expect(b.store.Reset(context.Background())).To(Succeed())
			Eventually(events).WithTimeout(10*time.Second).Should(BeClosed(), "undelivered events are dropped and the reader told to re-list")
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(HaveLen(3))

			fresh := b.store.Subscribe(sctx)
			_, err = b.store.Upsert(ctx, res(kind, "d", nil, `4`))
			Expect(err).NotTo(HaveOccurred())
			Eventually(fresh).WithTimeout(10 * time.Second).Should(Receive(HaveField("Resource.Key", "d")))
		})

		It("ends a subscription that falls too far behind instead of blocking writers", func() {
			sctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := b.store.Subscribe(sctx)
			items := make([]store.Resource, store.DefaultEventBuffer+10)
			for i := range items {
				items[i] = res(kind, fmt.Sprintf("k%05d", i), nil, `{}`)
			}
			_, err := b.store.Replace(ctx, kind, items)
			Expect(err).NotTo(HaveOccurred())
			n := 0
			for range events {
				n++
			}
			Expect(n).To(Equal(store.DefaultEventBuffer))
		})
	})
}

func manyLabels(n int) map[string]string {
	out := map[string]string{}
	for i := range n {
		out[fmt.Sprintf("l%d", i)] = "v"
	}
	return out
}

func bigLabels() map[string]string {
	out := map[string]string{}
	for i := range 20 {
		out[fmt.Sprintf("l%d", i)] = strings.Repeat("v", store.MaxLabelValueLength)
	}
	return out
}

func sortedCopy(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return out
}
