package source

import (
	"context"
	"net/url"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Change is one change a Source saw: Type is store.Upserted or
// store.Deleted; Resource is the new state (for a deletion only Kind and Key
// matter). It is the store's batch write, so the loop hands a run of them
// to Store.Apply as they are.
type Change = store.Change

// Upsert is a Change that creates or replaces r.
func Upsert(r store.Resource) Change { return Change{Type: store.Upserted, Resource: r} }

// Delete is a Change that removes kind/key.
func Delete(kind, key string) Change {
	return Change{Type: store.Deleted, Resource: store.Resource{Kind: kind, Key: key}}
}

// Source is one term's view of an upstream system. See the package doc for
// the order of calls and what each guarantees.
type Source interface {
	// Watch starts watching; changes arrive on the channel until Stop.
	Watch(ctx context.Context) (<-chan Change, error)
	// List returns the full current state.
	List(ctx context.Context) ([]store.Resource, error)
	// Stop ends every watch and waits for the source's goroutines; it
	// returns the error that ended a watch early, if any. Idempotent.
	Stop() error
}

// Opener opens a Source for the URL it is registered under. It is called
// once per term; ctx is the term context and bounds the opening only.
type Opener func(ctx context.Context, u *url.URL, log logr.Logger) (Source, error)
