package source

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// ErrUnknownScheme: no Opener is registered for a URL's scheme.
var ErrUnknownScheme = errors.New("no source registered for scheme")

// Registry maps a URL scheme ("file", "zookeeper", "kubernetes") to the
// Opener of its sources. A component takes a Registry so that a build which
// does not register a heavy source (client-go, the ZooKeeper client) does not
// link it.
type Registry map[string]Opener

// Register adds or replaces the Opener of scheme.
func (r Registry) Register(scheme string, o Opener) { r[scheme] = o }

// Schemes lists the registered schemes, sorted.
func (r Registry) Schemes() []string { return slices.Sorted(maps.Keys(r)) }

// Resolve parses raw and returns its URL and the Opener of its scheme. A
// bare word ("kubernetes") is a URL with that scheme and nothing else.
func (r Registry) Resolve(raw string) (*url.URL, Opener, error) {
	if raw == "" {
		return nil, nil, errors.New("source URL is empty")
	}
	u, err := ParseURL(raw)
	if err != nil {
		return nil, nil, err
	}
	o, ok := r[u.Scheme]
	if !ok {
		return nil, nil, fmt.Errorf("%w %q (source %q; registered: %s)", ErrUnknownScheme, u.Scheme, raw, strings.Join(r.Schemes(), ", "))
	}
	return u, o, nil
}

// ParseURL parses a source URL; a bare word is taken as the scheme, and may
// carry a query (kubernetes?namespace=a).
func ParseURL(raw string) (*url.URL, error) {
	if !strings.Contains(raw, ":") {
		scheme, query, _ := strings.Cut(raw, "?")
		if _, err := url.ParseQuery(query); err != nil {
			return nil, fmt.Errorf("parse source URL %q: %w", raw, err)
		}
		return &url.URL{Scheme: scheme, RawQuery: query}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse source URL %q: %w", raw, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("source URL %q has no scheme", raw)
	}
	return u, nil
}

// Dir returns the directory named by a file URL: file:///abs/dir,
// file://relative/dir and file:relative/dir all work.
func Dir(u *url.URL) (string, error) {
	dir := u.Opaque
	if dir == "" {
		dir = u.Host + u.Path
	}
	if dir == "" {
		return "", fmt.Errorf("file source URL %q names no directory", u.String())
	}
	return dir, nil
}
