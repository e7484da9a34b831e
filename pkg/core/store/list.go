package store

import (
	"encoding/base64"
	"fmt"
)

// The continue token of a page is the last key it returned, base64 (URL
// alphabet, no padding). Callers treat it as opaque.

func encodeContinue(lastKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastKey))
}

// decodeContinue returns the key after which the page starts ("" for the
// first page).
func decodeContinue(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("%w: continue token %q is not one this store returned", ErrInvalid, token)
	}
	return string(b), nil
}

func validateList(kind string, opts ListOptions) (after string, err error) {
	if err := validateKind(kind); err != nil {
		return "", err
	}
	if opts.Limit < 0 {
		return "", fmt.Errorf("%w: limit %d: must not be negative", ErrInvalid, opts.Limit)
	}
	return decodeContinue(opts.Continue)
}

// matches reports whether labels carry every selector label.
func matches(labels, selector map[string]string) bool {
	for name, want := range selector {
		if got, ok := labels[name]; !ok || got != want {
			return false
		}
	}
	return true
}

// page cuts the matching items found in key order (at most limit+1 of
// them when limit > 0) into a ListResult.
func page(items []Resource, limit int) ListResult {
	if limit > 0 && len(items) > limit {
		items = items[:limit]
		return ListResult{Items: items, Continue: encodeContinue(items[limit-1].Key)}
	}
	return ListResult{Items: items}
}
