package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a resource may hold. They keep every value inside the
// columns of every dialect (lengths are in bytes, which never exceed the
// character counts the column types bound) and every batch inside the
// drivers' packet limits.
const (
	MaxKindLength       = 128
	MaxKeyLength        = 512
	MaxLabels           = 64
	MaxLabelNameLength  = 253
	MaxLabelValueLength = 1024
	// MaxLabelsSize bounds the labels as stored (their JSON encoding).
	MaxLabelsSize = 16 << 10
	// MaxSpecSize bounds the spec after compaction.
	MaxSpecSize = 1 << 20
)

// validateName checks a kind, key or label name: non-empty, at most max
// bytes of valid UTF-8, no control characters, no surrounding white space.
// The last two rules keep key order and equality the same on every dialect
// (MySQL's PAD SPACE collations ignore trailing spaces).
func validateName(field, s string, maxLen int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, field)
	case len(s) > maxLen:
		return fmt.Errorf("%w: %s is %d bytes: must be at most %d", ErrInvalid, field, len(s), maxLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalid, field, s)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%w: %s %q must not start or end with white space", ErrInvalid, field, s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %s %q must not contain control characters", ErrInvalid, field, s)
	}
	return nil
}

func validateKind(kind string) error { return validateName("kind", kind, MaxKindLength) }

func validateKindKey(kind, key string) error {
	if err := validateKind(kind); err != nil {
		return err
	}
	return validateName("key", key, MaxKeyLength)
}

// stored is a validated resource in the form the backends keep: spec
// compacted, labels cloned (nil when empty), and for SQL the labels' JSON
// and a digest of labels and spec that Replace compares.
type stored struct {
	r          Resource
	labelsJSON string
	digest     string
}

// normalize validates r and returns its stored form. Kind, key, labels and
// spec are checked; ResourceVersion, Term and UpdatedAt are the store's to
// set and are ignored.
func normalize(r Resource) (stored, error) {
	if err := validateKindKey(r.Kind, r.Key); err != nil {
		return stored{}, err
	}
	if len(r.Labels) > MaxLabels {
		return stored{}, fmt.Errorf("%w: %s/%s has %d labels: must be at most %d", ErrInvalid, r.Kind, r.Key, len(r.Labels), MaxLabels)
	}
	for name, value := range r.Labels {
		if err := validateName("label name", name, MaxLabelNameLength); err != nil {
			return stored{}, fmt.Errorf("%s/%s: %w", r.Kind, r.Key, err)
		}
		if len(value) > MaxLabelValueLength {
			return stored{}, fmt.Errorf("%w: %s/%s: label %q value is %d bytes: must be at most %d", ErrInvalid, r.Kind, r.Key, name, len(value), MaxLabelValueLength)
		}
		if !utf8.ValidString(value) {
			return stored{}, fmt.Errorf("%w: %s/%s: label %q value is not valid UTF-8", ErrInvalid, r.Kind, r.Key, name)
		}
	}
	labelsJSON := "{}"
	var labels map[string]string
	if len(r.Labels) > 0 {
		b, err := json.Marshal(r.Labels) // sorted keys: a stable encoding
		if err != nil {
			return stored{}, fmt.Errorf("%w: %s/%s: labels: %v", ErrInvalid, r.Kind, r.Key, err)
		}
		if len(b) > MaxLabelsSize {
			return stored{}, fmt.Errorf("%w: %s/%s: labels take %d bytes: must be at most %d", ErrInvalid, r.Kind, r.Key, len(b), MaxLabelsSize)
		}
		labelsJSON, labels = string(b), maps.Clone(r.Labels)
	}
	if len(bytes.TrimSpace(r.Spec)) == 0 {
		return stored{}, fmt.Errorf("%w: %s/%s: spec is empty: must be a JSON value", ErrInvalid, r.Kind, r.Key)
	}
	var spec bytes.Buffer
	spec.Grow(len(r.Spec))
	if err := json.Compact(&spec, r.Spec); err != nil { // Compact scans it all: it validates too
		return stored{}, fmt.Errorf("%w: %s/%s: spec is not valid JSON: %v", ErrInvalid, r.Kind, r.Key, err)
	}
	if spec.Len() > MaxSpecSize {
		return stored{}, fmt.Errorf("%w: %s/%s: spec is %d bytes: must be at most %d", ErrInvalid, r.Kind, r.Key, spec.Len(), MaxSpecSize)
	}
	sum := sha256.New()
	sum.Write([]byte(labelsJSON))
	sum.Write([]byte{0})
	sum.Write(spec.Bytes())
	return stored{
		r:          Resource{Kind: r.Kind, Key: r.Key, Labels: labels, Spec: json.RawMessage(spec.Bytes())},
		labelsJSON: labelsJSON,
		digest:     hex.EncodeToString(sum.Sum(nil)),
	}, nil
}

// normalizeItems validates the items of Replace(kind, items): each must be
// of kind (an empty Kind is taken as kind) and keys must be unique.
func normalizeItems(kind string, items []Resource) ([]stored, error) {
	if err := validateKind(kind); err != nil {
		return nil, err
	}
	out := make([]stored, 0, len(items))
	seen := make(map[string]int, len(items))
	for i, it := range items {
		s, err := normalizeItem(kind, i, it)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[it.Key]; dup {
			return nil, fmt.Errorf("%w: items[%d] and items[%d] have the same key %q", ErrInvalid, j, i, it.Key)
		}
		seen[it.Key] = i
		out = append(out, s)
	}
	return out, nil
}

// normalizeItem validates items[i] of Replace(kind, items): it must be of
// kind (an empty Kind is taken as kind).
func normalizeItem(kind string, i int, it Resource) (stored, error) {
	if it.Kind == "" {
		it.Kind = kind
	}
	if it.Kind != kind {
		return stored{}, fmt.Errorf("%w: items[%d] has kind %q: Replace of kind %q takes only that kind", ErrInvalid, i, it.Kind, kind)
	}
	s, err := normalize(it)
	if err != nil {
		return stored{}, fmt.Errorf("items[%d]: %w", i, err)
	}
	return s, nil
}

// cloneResource returns a copy that shares no memory with r.
func cloneResource(r Resource) Resource {
	r.Labels = maps.Clone(r.Labels)
	r.Spec = bytes.Clone(r.Spec)
	return r
}
