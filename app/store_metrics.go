package app

import (
	"context"
	"fmt"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// meteredStore counts the writes that carry a leader term (the fenced
// ones) by result; reads and everything else pass through.
type meteredStore struct {
	store.ResourceStore
	m *Metrics
}

var _ store.ResourceStore = meteredStore{}

func (s meteredStore) count(ctx context.Context, op string, err error) {
	if t, ok := leader.TermFrom(ctx); ok && !t.IsZero() {
		s.m.storeWrite(op, err)
	}
}

func (s meteredStore) Upsert(ctx context.Context, r store.Resource) (store.Resource, error) {
	out, err := s.ResourceStore.Upsert(ctx, r)
	s.count(ctx, "upsert", err)
	return out, err
}

func (s meteredStore) Delete(ctx context.Context, kind, key string) error {
	err := s.ResourceStore.Delete(ctx, kind, key)
	s.count(ctx, "delete", err)
	return err
}

func (s meteredStore) Replace(ctx context.Context, kind string, items []store.Resource) (store.ReplaceResult, error) {
	res, err := s.ResourceStore.Replace(ctx, kind, items)
	s.count(ctx, "replace", err)
	return res, err
}

func (s meteredStore) Apply(ctx context.Context, changes []store.Change) (store.ReplaceResult, error) {
	res, err := s.ResourceStore.Apply(ctx, changes)
	s.count(ctx, "apply", err)
	return res, err
}

var _ store.Counter = meteredStore{}

// Counts passes the console's resource counts through (both backends count).
func (s meteredStore) Counts(ctx context.Context) (map[string]int64, error) {
	c, ok := s.ResourceStore.(store.Counter)
	if !ok {
		return nil, fmt.Errorf("count resources: the %T store cannot count", s.ResourceStore)
	}
	return c.Counts(ctx)
}
