package source

import (
	"fmt"
	"slices"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

// View turns what a source reports into the resources the store keeps. The
// loop calls it from its own goroutine only.
type View interface {
	// Kinds lists the kinds the view writes; every Replace covers them all,
	// so a kind with no items is emptied in the store.
	Kinds() []string
	// Reset forgets everything and returns, per kind, the resources the
	// store must hold for the source's full state items. The items are
	// handed over: Reset may clear them as it consumes them, so that a
	// large list is not held beside what is derived from it.
	Reset(items []store.Resource) (map[string][]store.Resource, error)
	// Apply folds in one source change and returns the store changes it
	// causes, possibly none.
	Apply(c Change) []Change
}

// BatchView is a View that can defer what it derives to the end of a
// batch: the loop calls Add for each change of a batch and Flush once
// before writing it, so a resource that many changes touch is derived and
// written once. Apply must equal Add then Flush.
type BatchView interface {
	View
	// Add folds in one change, deferring the store changes it causes.
	Add(c Change)
	// Flush returns the store changes caused by every change Added since
	// the last Flush (or Reset), each resource at most once.
	Flush() []Change
}

// Identity is the View that stores what the source reports, for sources
// whose items are already of the stored kinds.
func Identity(kinds ...string) View { return identity(slices.Clone(kinds)) }

type identity []string

func (v identity) Kinds() []string { return v }

func (v identity) Reset(items []store.Resource) (map[string][]store.Resource, error) {
	out := make(map[string][]store.Resource, len(v))
	for _, r := range items {
		if !slices.Contains(v, r.Kind) {
			return nil, fmt.Errorf("source reported kind %q, want one of %v", r.Kind, []string(v))
		}
		out[r.Kind] = append(out[r.Kind], r)
	}
	return out, nil
}

func (v identity) Apply(c Change) []Change {
	if !slices.Contains(v, c.Resource.Kind) {
		return nil
	}
	return []Change{c}
}
