package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// Change is one write of an Apply batch: Upserted creates or replaces
// Resource, Deleted removes Resource.Kind/Resource.Key.
type Change struct {
	Type     EventType
	Resource Resource
}

// pending is a batch's last change of one resource, validated.
type pending struct {
	typ  EventType
	kind string
	key  string
	s    stored // for Upserted
}

// coalesce validates changes and keeps, per kind and key, the last one,
// sorted by kind and key: the state the batch leaves does not depend on
// the changes between a key's first and last. Only the last upsert of a
// key is normalized (a stream repeats hot keys); every change's type, kind
// and key are checked.
func coalesce(changes []Change) ([]pending, error) {
	last := make(map[[2]string]int, len(changes))
	for i, c := range changes {
		if c.Type != Upserted && c.Type != Deleted {
			return nil, fmt.Errorf("%w: changes[%d] (%s/%s) has type %q: want %q or %q",
				ErrInvalid, i, c.Resource.Kind, c.Resource.Key, c.Type, Upserted, Deleted)
		}
		if err := validateKindKey(c.Resource.Kind, c.Resource.Key); err != nil {
			return nil, fmt.Errorf("changes[%d]: %w", i, err)
		}
		last[[2]string{c.Resource.Kind, c.Resource.Key}] = i
	}
	out := make([]pending, 0, len(last))
	for _, i := range last {
		c := changes[i]
		p := pending{typ: c.Type, kind: c.Resource.Kind, key: c.Resource.Key}
		if c.Type == Upserted {
			s, err := normalize(c.Resource)
			if err != nil {
				return nil, fmt.Errorf("changes[%d]: %w", i, err)
			}
			p.s = s
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b pending) int {
		if c := strings.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return out, nil
}

// Apply makes the changes, in one fenced transaction: the fence once, then
// the touched rows read under row locks, then batched DELETEs, INSERTs and
// upserts as in Replace. When a key changes several times in a batch the
// last change counts (one version bump); an upsert that leaves labels and
// spec as stored writes nothing; deleting a missing resource is no error.
// It returns how many resources were added, updated and deleted.
func (s *GORM) Apply(ctx context.Context, changes []Change) (ReplaceResult, error) {
	ps, err := coalesce(changes)
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("apply: %w", err)
	}
	var res ReplaceResult
	if len(ps) == 0 {
		if _, err := authorize(ctx); err != nil {
			return res, fmt.Errorf("apply: %w", err)
		}
		return res, nil
	}
	err = s.write(ctx, fmt.Sprintf("apply %d changes", len(changes)), func(tx *gorm.DB, a authority) ([]rowChange, error) {
		if s.d.customPlans != "" {
			if err := tx.Exec(s.d.customPlans).Error; err != nil {
				return nil, err
			}
		}
		var events []rowChange
		for len(ps) > 0 {
			n := 1
			for n < len(ps) && ps[n].kind == ps[0].kind {
				n++
			}
			plan, err := s.planApply(tx, ps[:n], a.termNumber())
			if err != nil {
				return nil, err
			}
			res.Added += len(plan.adds)
			res.Updated += len(plan.updates)
			res.Deleted += len(plan.deletes)
			ev, err := plan.apply(tx, s)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			ps = ps[n:]
		}
		return events, nil
	})
	if err != nil {
		return ReplaceResult{}, err
	}
	return res, nil
}

// planApply compares the changes of one kind with their rows, read under
// row locks inside tx in batches of keys: for an upsert only the version
// and digest it compares, for a deletion the whole row (its event).
func (s *GORM) planApply(tx *gorm.DB, ps []pending, term int64) (replacePlan, error) {
	kind := ps[0].kind
	var upserts, deletes []string
	for _, p := range ps {
		if p.typ == Deleted {
			deletes = append(deletes, p.key)
		} else {
			upserts = append(upserts, p.key)
		}
	}
	cur := make(map[string]current, len(upserts))
	for keys := range slices.Chunk(upserts, s.opts.batchSize) {
		where, args := whereKeys(kind, keys)
		var rows []current
		if err := tx.Raw(`SELECT res_key, resource_version, digest FROM resources`+where+s.d.forUpdate, args...).Scan(&rows).Error; err != nil {
			return replacePlan{}, fmt.Errorf("read %d rows: %w", len(keys), err)
		}
		for _, r := range rows {
			cur[r.ResKey] = r
		}
	}
	old := make(map[string]resourceRow, len(deletes))
	for keys := range slices.Chunk(deletes, s.opts.batchSize) {
		where, args := whereKeys(kind, keys)
		var rows []resourceRow
		if err := tx.Raw(selectResource+where+s.d.forUpdate, args...).Scan(&rows).Error; err != nil {
			return replacePlan{}, fmt.Errorf("read %d rows: %w", len(keys), err)
		}
		for _, r := range rows {
			old[r.ResKey] = r
		}
	}
	plan := replacePlan{kind: kind}
	at := now().UnixMilli()
	for _, p := range ps {
		if p.typ == Deleted {
			if row, ok := old[p.key]; ok {
				plan.deletes = append(plan.deletes, row)
			}
			continue
		}
		switch c, ok := cur[p.key]; {
		case !ok:
			plan.adds = append(plan.adds, rowOf(p.s, 1, term, at))
		case c.Digest != p.s.digest:
			plan.updates = append(plan.updates, rowOf(p.s, c.ResourceVersion+1, term, at))
		}
	}
	return plan, nil
}

// Apply makes the changes in one step under the lock, with the semantics
// of GORM.Apply.
func (m *Memory) Apply(ctx context.Context, changes []Change) (ReplaceResult, error) {
	ps, err := coalesce(changes)
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("apply: %w", err)
	}
	a, err := m.authorize(ctx, fmt.Sprintf("apply %d changes", len(changes)))
	if err != nil {
		return ReplaceResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res ReplaceResult
	var events []Event
	at := now()
	for _, p := range ps {
		old, exists := m.kinds[p.kind][p.key]
		switch {
		case p.typ == Deleted && exists:
			delete(m.kinds[p.kind], p.key)
			res.Deleted++
			events = append(events, Event{Type: Deleted, Resource: cloneResource(old)})
		case p.typ == Deleted, exists && sameContent(old, p.s.r):
		default:
			if exists {
				res.Updated++
			} else {
				res.Added++
			}
			events = append(events, Event{Type: Upserted, Resource: cloneResource(m.putLocked(p.s.r, a.termNumber(), at))})
		}
	}
	m.notify.publish(events...)
	return res, nil
}
