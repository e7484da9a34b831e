package store

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// Replace makes kind hold exactly items, in one fenced transaction: the
// fence first, then the kind's (key, version, digest) read under row locks,
// then batched DELETEs, INSERTs and upserts of at most the batch size rows
// (and about 4 MiB) each. Unchanged items are not written. It returns how
// many resources were added, updated and deleted.
func (s *GORM) Replace(ctx context.Context, kind string, items []Resource) (ReplaceResult, error) {
	in, err := normalizeItems(kind, items)
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("replace %s: %w", kind, err)
	}
	var res ReplaceResult
	err = s.write(ctx, "replace "+kind, func(tx *gorm.DB, a authority) ([]Event, error) {
		plan, err := s.planReplace(tx, kind, in, a.termNumber())
		if err != nil {
			return nil, err
		}
		res = ReplaceResult{Added: len(plan.adds), Updated: len(plan.updates), Deleted: len(plan.deletes)}
		return plan.apply(tx, s)
	})
	if err != nil {
		return ReplaceResult{}, err
	}
	return res, nil
}

// replacePlan is what a Replace writes.
type replacePlan struct {
	kind    string
	adds    []resourceRow
	updates []resourceRow
	deletes []resourceRow // only Kind, ResKey and the old row's columns
}

// planReplace compares items with the kind's rows, read under row locks
// inside tx, so the plan holds until tx ends.
func (s *GORM) planReplace(tx *gorm.DB, kind string, items []stored, term int64) (replacePlan, error) {
	var existing []resourceRow
	q := selectResource + ` WHERE kind = ? ORDER BY res_key` + s.d.forUpdate
	if err := tx.Raw(q, kind).Scan(&existing).Error; err != nil {
		return replacePlan{}, fmt.Errorf("read current rows: %w", err)
	}
	byKey := make(map[string]resourceRow, len(existing))
	for _, r := range existing {
		byKey[r.ResKey] = r
	}
	plan := replacePlan{kind: kind}
	at := now().UnixMilli()
	for _, it := range items {
		old, ok := byKey[it.r.Key]
		switch {
		case !ok:
			plan.adds = append(plan.adds, rowOf(it, 1, term, at))
		case old.Digest != it.digest:
			plan.updates = append(plan.updates, rowOf(it, old.ResourceVersion+1, term, at))
		}
		delete(byKey, it.r.Key)
	}
	for _, r := range existing {
		if _, gone := byKey[r.ResKey]; gone {
			plan.deletes = append(plan.deletes, r)
		}
	}
	slices.SortFunc(plan.adds, byResKey)
	slices.SortFunc(plan.updates, byResKey)
	return plan, nil
}

func byResKey(a, b resourceRow) int {
	switch {
	case a.ResKey < b.ResKey:
		return -1
	case a.ResKey > b.ResKey:
		return 1
	}
	return 0
}

// apply runs the batches (deletes, then adds, then updates, each in key
// order) and returns the events of the changes.
func (p replacePlan) apply(tx *gorm.DB, s *GORM) ([]Event, error) {
	events := make([]Event, 0, len(p.adds)+len(p.updates)+len(p.deletes))
	for batch := range batches(p.deletes, s.opts.batchSize) {
		args := make([]any, 0, len(batch)+1)
		args = append(args, p.kind)
		for _, r := range batch {
			args = append(args, r.ResKey)
		}
		if err := tx.Exec(deleteKeys(len(batch)), args...).Error; err != nil {
			return nil, fmt.Errorf("delete %d rows: %w", len(batch), err)
		}
		for _, r := range batch {
			e, err := s.changed(tx, OpDelete, Deleted, r)
			if err != nil {
				return nil, err
			}
			events = append(events, e)
		}
	}
	for _, step := range []struct {
		op   string
		rows []resourceRow
		tail string
	}{
		{OpAdd, p.adds, ""},
		{OpUpdate, p.updates, s.d.upsertTail},
	} {
		for batch := range batches(step.rows, s.opts.batchSize) {
			args := make([]any, 0, len(batch)*resourceColumnCount)
			for _, r := range batch {
				args = append(args, r.args()...)
			}
			if err := tx.Exec(insertRows(len(batch))+step.tail, args...).Error; err != nil {
				return nil, fmt.Errorf("%s %d rows: %w", step.op, len(batch), err)
			}
			for _, r := range batch {
				e, err := s.changed(tx, step.op, Upserted, r)
				if err != nil {
					return nil, err
				}
				events = append(events, e)
			}
		}
	}
	return events, nil
}

// changed runs the hook for one written row and returns its event.
func (s *GORM) changed(tx *gorm.DB, op string, typ EventType, r resourceRow) (Event, error) {
	res, err := r.resource()
	if err != nil {
		return Event{}, err
	}
	if err := s.hook(tx, op, res); err != nil {
		return Event{}, err
	}
	return Event{Type: typ, Resource: res}, nil
}

// batches yields rows in runs of at most n rows and about maxBatchBytes.
func batches(rows []resourceRow, n int) func(yield func([]resourceRow) bool) {
	return func(yield func([]resourceRow) bool) {
		for len(rows) > 0 {
			end, bytes := 0, 0
			for end < len(rows) && end < n && (end == 0 || bytes+rows[end].size() <= maxBatchBytes) {
				bytes += rows[end].size()
				end++
			}
			if !yield(rows[:end]) {
				return
			}
			rows = rows[end:]
		}
	}
}
