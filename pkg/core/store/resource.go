package store

import (
	"context"
	"encoding/json"
	"time"
)

// Resource is one object in the store.
type Resource struct {
	Kind   string            `json:"kind"`
	Key    string            `json:"key"`
	Labels map[string]string `json:"labels,omitempty"`
	// Spec is the object itself, as JSON.
	Spec json.RawMessage `json:"spec"`
	// ResourceVersion is bumped by the store on every write of this object.
	ResourceVersion int64 `json:"resourceVersion"`
	// Term is the leader term that wrote it (0 for an unfenced write).
	Term      int64     `json:"term"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// ListOptions narrows a List.
type ListOptions struct {
	// Labels keeps the resources that carry every one of these labels.
	Labels map[string]string
	// Limit bounds a page; 0 means no limit.
	Limit int
	// Continue is the token of the previous page's ListResult.
	Continue string
}

// ListResult is one page of a List, in key order.
type ListResult struct {
	Items []Resource
	// Continue is non-empty when there are more items; pass it back in
	// ListOptions.Continue.
	Continue string
}

// ReplaceResult counts what a Replace changed.
type ReplaceResult struct {
	Added, Updated, Deleted int
}

// EventType says what happened to a resource.
type EventType string

// Event types.
const (
	Upserted EventType = "upserted"
	Deleted  EventType = "deleted"
)

// Event tells an in-process reader of one change committed by this replica.
type Event struct {
	Type     EventType
	Resource Resource
}

// ResourceStore is the store contract. Writes (Upsert, Delete, Replace) are
// fenced when ctx carries a leader.Term; a write without a Term is refused
// unless ctx was made by Unfenced.
type ResourceStore interface {
	Get(ctx context.Context, kind, key string) (Resource, error)
	List(ctx context.Context, kind string, opts ListOptions) (ListResult, error)
	Upsert(ctx context.Context, r Resource) (Resource, error)
	Delete(ctx context.Context, kind, key string) error
	Replace(ctx context.Context, kind string, items []Resource) (ReplaceResult, error)
	// Apply makes a batch of changes (of any kinds) in one write: on GORM
	// one fenced transaction, whose fence is checked once for the batch.
	// A key's last change in the batch counts; an upsert that changes
	// nothing and the deletion of a missing resource write nothing.
	Apply(ctx context.Context, changes []Change) (ReplaceResult, error)
	// Reset drops what this replica built during its term (caches, pending
	// batches). It never deletes shared rows.
	Reset(ctx context.Context) error
	// Subscribe delivers the changes this replica commits until ctx ends.
	Subscribe(ctx context.Context) <-chan Event
	// Shared reports whether several replicas can use the store at once
	// (false for the memory backend).
	Shared() bool
}
