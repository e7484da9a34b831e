package app

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// unknownKeys lists every key of the YAML document that no field of Config
// takes, by its dotted path and with the nearest known key at the same
// level, e.g. `unknown key "http.adress" (did you mean "http.address"?)`.
func unknownKeys(data []byte) ([]string, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(j, &doc); err != nil {
		return nil, err
	}
	var out []string
	walkKeys("", doc, reflect.TypeOf(Config{}), &out)
	return out, nil
}

func walkKeys(prefix string, v any, t reflect.Type, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || t.Kind() != reflect.Struct {
		return
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = f.Type
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", prefix+k)
			if near := nearestKey(k, fields); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", prefix+near)
			}
			*out = append(*out, msg)
			continue
		}
		walkKeys(prefix+k+".", m[k], ft, out)
	}
}

// nearestKey is the known key closest to k by edit distance (ignoring
// case), if it is close enough to be a typo.
func nearestKey(k string, known map[string]reflect.Type) string {
	best, bestD := "", max(2, len(k)/3)+1
	for name := range known {
		d := editDistance(strings.ToLower(k), strings.ToLower(name))
		if d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
