package file

import (
	"bytes"
	"maps"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// diff returns the changes that turn one file's old items into its new ones:
// deletions of the vanished, upserts of the new and the changed.
func diff(old, cur []store.Resource) []source.Change {
	type id struct{ kind, key string }
	prev := make(map[id]store.Resource, len(old))
	for _, r := range old {
		prev[id{r.Kind, r.Key}] = r
	}
	var out []source.Change
	seen := make(map[id]bool, len(cur))
	for _, r := range cur {
		k := id{r.Kind, r.Key}
		seen[k] = true
		if p, ok := prev[k]; ok && same(p, r) {
			continue
		}
		out = append(out, source.Upsert(r))
	}
	for _, r := range old {
		if !seen[id{r.Kind, r.Key}] {
			out = append(out, source.Delete(r.Kind, r.Key))
		}
	}
	return out
}

func same(a, b store.Resource) bool {
	return bytes.Equal(a.Spec, b.Spec) && maps.Equal(a.Labels, b.Labels)
}
