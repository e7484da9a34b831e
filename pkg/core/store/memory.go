package store

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
)

// Memory is the in-process backend, for one replica only: its rows live in
// this process, so several replicas on it would each see their own store.
// Shared reports false, and the application refuses to start several
// replicas on it.
//
// Memory has no lease to fence against. A write is accepted when its
// context carries a Term (the term is stamped on the resource, unchecked)
// or is Unfenced; otherwise it fails with ErrNoTerm, like the GORM backend.
type Memory struct {
	notify *notifier

	mu    sync.RWMutex
	kinds map[string]map[string]Resource
}

var _ ResourceStore = (*Memory)(nil)

// NewMemory returns an empty memory store. WithEventBuffer applies; the
// other options are for the GORM backend and are ignored.
func NewMemory(opts ...Option) *Memory {
	o := buildOptions(opts)
	return &Memory{notify: newNotifier(o.eventBuffer), kinds: map[string]map[string]Resource{}}
}

// Shared is false: the rows live in this process.
func (m *Memory) Shared() bool { return false }

// Get returns the resource or ErrNotFound.
func (m *Memory) Get(ctx context.Context, kind, key string) (Resource, error) {
	if err := validateKindKey(kind, key); err != nil {
		return Resource{}, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Resource{}, fmt.Errorf("get %s/%s: %w", kind, key, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.kinds[kind][key]
	if !ok {
		return Resource{}, fmt.Errorf("get %s/%s: %w", kind, key, ErrNotFound)
	}
	return cloneResource(r), nil
}

// List returns one page of kind in key order.
func (m *Memory) List(ctx context.Context, kind string, opts ListOptions) (ListResult, error) {
	after, err := validateList(kind, opts)
	if err != nil {
		return ListResult{}, fmt.Errorf("list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return ListResult{}, fmt.Errorf("list %s: %w", kind, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	rows := m.kinds[kind]
	keys := slices.Sorted(maps.Keys(rows))
	start := sort.SearchStrings(keys, after)
	if start < len(keys) && keys[start] == after {
		start++
	}
	items := []Resource{}
	for _, k := range keys[start:] {
		r := rows[k]
		if !matches(r.Labels, opts.Labels) {
			continue
		}
		items = append(items, cloneResource(r))
		if opts.Limit > 0 && len(items) > opts.Limit {
			break
		}
	}
	return page(items, opts.Limit), nil
}

// Upsert creates or replaces the resource and bumps its version.
func (m *Memory) Upsert(ctx context.Context, r Resource) (Resource, error) {
	s, err := normalize(r)
	if err != nil {
		return Resource{}, fmt.Errorf("upsert: %w", err)
	}
	a, err := m.authorize(ctx, "upsert "+r.Kind+"/"+r.Key)
	if err != nil {
		return Resource{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.putLocked(s.r, a.termNumber(), now())
	m.notify.publish(Event{Type: Upserted, Resource: cloneResource(out)})
	return cloneResource(out), nil
}

// Delete removes the resource or returns ErrNotFound.
func (m *Memory) Delete(ctx context.Context, kind, key string) error {
	if err := validateKindKey(kind, key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if _, err := m.authorize(ctx, "delete "+kind+"/"+key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.kinds[kind][key]
	if !ok {
		return fmt.Errorf("delete %s/%s: %w", kind, key, ErrNotFound)
	}
	delete(m.kinds[kind], key)
	m.notify.publish(Event{Type: Deleted, Resource: cloneResource(old)})
	return nil
}

// Replace makes kind hold exactly items, in one step under the lock.
func (m *Memory) Replace(ctx context.Context, kind string, items []Resource) (ReplaceResult, error) {
	in, err := normalizeItems(kind, items)
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("replace %s: %w", kind, err)
	}
	a, err := m.authorize(ctx, "replace "+kind)
	if err != nil {
		return ReplaceResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res ReplaceResult
	var events []Event
	at := now()
	keep := make(map[string]struct{}, len(in))
	for _, s := range in {
		keep[s.r.Key] = struct{}{}
		old, exists := m.kinds[kind][s.r.Key]
		if exists && sameContent(old, s.r) {
			continue
		}
		if exists {
			res.Updated++
		} else {
			res.Added++
		}
		events = append(events, Event{Type: Upserted, Resource: cloneResource(m.putLocked(s.r, a.termNumber(), at))})
	}
	for _, key := range slices.Sorted(maps.Keys(m.kinds[kind])) {
		if _, ok := keep[key]; ok {
			continue
		}
		events = append(events, Event{Type: Deleted, Resource: cloneResource(m.kinds[kind][key])})
		delete(m.kinds[kind], key)
		res.Deleted++
	}
	m.notify.publish(events...)
	return res, nil
}

// Reset ends every subscription (dropping undelivered events). The rows
// are the store itself and stay.
func (m *Memory) Reset(context.Context) error {
	m.notify.reset()
	return nil
}

// Subscribe delivers the changes committed from now on (see ResourceStore).
func (m *Memory) Subscribe(ctx context.Context) <-chan Event { return m.notify.subscribe(ctx) }

func (m *Memory) authorize(ctx context.Context, what string) (authority, error) {
	a, err := authorize(ctx)
	if err != nil {
		return a, fmt.Errorf("%s: %w", what, err)
	}
	if err := ctx.Err(); err != nil {
		return a, fmt.Errorf("%s: %w", what, err)
	}
	return a, nil
}

// putLocked stores r (already normalized and owned by the store) with the
// next version. m.mu is held.
func (m *Memory) putLocked(r Resource, term int64, at time.Time) Resource {
	rows := m.kinds[r.Kind]
	if rows == nil {
		rows = map[string]Resource{}
		m.kinds[r.Kind] = rows
	}
	r.ResourceVersion = rows[r.Key].ResourceVersion + 1
	r.Term = term
	r.UpdatedAt = at
	rows[r.Key] = r
	return r
}

// sameContent reports whether a write of r would leave old as it is.
func sameContent(old, r Resource) bool {
	return maps.Equal(old.Labels, r.Labels) && bytes.Equal(old.Spec, r.Spec)
}

// now is the local time UpdatedAt records, at the millisecond resolution
// the SQL columns keep.
func now() time.Time { return time.UnixMilli(time.Now().UnixMilli()) }
