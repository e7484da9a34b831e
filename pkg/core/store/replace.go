package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Defaults of WithReplaceChunk.
const (
	// DefaultReplaceChunkRows bounds the source items (or the deletes) one
	// transaction of a GORM Replace writes.
	DefaultReplaceChunkRows = 5000
	// DefaultReplaceChunkTime is the time after which a chunk's transaction
	// commits at the end of its current batch: well under the election's
	// op timeout, so that nothing that waits for it (a successor's
	// acquisition, and on SQLite every other write) waits long.
	DefaultReplaceChunkTime = 200 * time.Millisecond
)

// sqliteChunkGap is how long a Replace leaves SQLite's write lock free
// between two chunks. SQLite's busy handler does not queue waiters: it
// polls, sleeping up to 100 ms between tries, so a writer that took the
// lock back at once would starve every other connection (the leader's
// renew) for the whole busy timeout. A gap longer than the longest sleep
// lets each waiter in.
const sqliteChunkGap = 120 * time.Millisecond

// WithReplaceChunk bounds each transaction of a GORM Replace to at most
// rows source items (or rows deletes) and to about budget: a chunk commits
// at the end of the first batch that ends past budget. rows <= 0 and
// budget <= 0 keep the defaults. The memory backend ignores it.
func WithReplaceChunk(rows int, budget time.Duration) Option {
	return func(o *options) { o.chunkRows, o.chunkTime = rows, budget }
}

// Replace makes kind hold exactly items. It validates every item first
// (an invalid one fails the call and writes nothing), then writes in
// chunks, each its own fenced transaction of bounded rows and time, in key
// order: first every add and update, then the deletes of the keys the
// source does not hold. A Replace whose source and stored kind each fit in
// one chunk is one transaction. Unchanged items are not written. It
// returns how many resources were added, updated and deleted by the chunks
// that committed, also when a later chunk failed. See the package doc for
// what readers see meanwhile. items must not change until it returns.
func (s *GORM) Replace(ctx context.Context, kind string, items []Resource) (ReplaceResult, error) {
	order, err := sortedItems(kind, items)
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("replace %s: %w", kind, err)
	}
	rows, budget := s.opts.chunkRows, s.opts.chunkTime
	if rows <= 0 {
		rows = DefaultReplaceChunkRows
	}
	if budget <= 0 {
		budget = DefaultReplaceChunkTime
	}
	r := &replacer{s: s, what: "replace " + kind, kind: kind, items: items, order: order, rows: rows, budget: budget}
	err = r.run(ctx)
	return r.res, err
}

// sortedItems validates items as Replace takes them and returns their
// indexes in key order. It keeps nothing of their normalized form: each
// chunk normalizes its items again, so that a Replace never holds a second
// copy of every item.
func sortedItems(kind string, items []Resource) ([]int, error) {
	if err := validateKind(kind); err != nil {
		return nil, err
	}
	for i, it := range items {
		if _, err := normalizeItem(kind, i, it); err != nil {
			return nil, err
		}
	}
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(items[a].Key, items[b].Key) })
	for i := 1; i < len(order); i++ {
		if a, b := order[i-1], order[i]; items[a].Key == items[b].Key {
			return nil, fmt.Errorf("%w: items[%d] and items[%d] have the same key %q", ErrInvalid, a, b, items[b].Key)
		}
	}
	return order, nil
}

// replacer is one Replace in progress.
type replacer struct {
	s      *GORM
	what   string
	kind   string
	items  []Resource
	order  []int // indexes of items in key order
	rows   int
	budget time.Duration

	res    ReplaceResult // what committed chunks wrote
	chunks int
}

// current is a stored row's version and digest, what Replace compares.
type current struct {
	ResKey          string
	ResourceVersion int64
	Digest          string
}

func (r *replacer) run(ctx context.Context) error {
	next, deleted := 0, false
	if len(r.order) <= r.rows {
		// The whole source fits in one chunk: when the stored kind does
		// too, the Replace is one transaction, as readers of small kinds
		// expect.
		var n int
		err := r.chunk(ctx, func(tx *gorm.DB, term int64, c *ReplaceResult) ([]rowChange, error) {
			var keys []string
			q := `SELECT res_key FROM resources WHERE kind = ? ORDER BY res_key LIMIT ?` + r.s.d.forUpdate
			if err := tx.Raw(q, r.kind, r.rows+1).Scan(&keys).Error; err != nil {
				return nil, fmt.Errorf("read current keys: %w", err)
			}
			deleted = len(keys) <= r.rows
			var events []rowChange
			var err error
			n, events, err = r.upserts(tx, term, 0, !deleted, c)
			if err != nil || !deleted {
				return events, err
			}
			more, _, err := r.deletes(tx, r.vanished(keys, new(int)), false, c)
			return append(events, more...), err
		})
		if err != nil {
			return err
		}
		next = n
	}
	for next < len(r.order) {
		var n int
		err := r.chunk(ctx, func(tx *gorm.DB, term int64, c *ReplaceResult) ([]rowChange, error) {
			var events []rowChange
			var err error
			n, events, err = r.upserts(tx, term, next, true, c)
			return events, err
		})
		if err != nil {
			return err
		}
		next += n
	}
	if deleted {
		return nil
	}
	return r.deletePass(ctx)
}

// chunk runs fn as one fenced write and adds what it counted to r.res once
// it committed. On SQLite it first leaves the write lock free for a while
// after the previous chunk (see sqliteChunkGap).
func (r *replacer) chunk(ctx context.Context, fn func(tx *gorm.DB, term int64, c *ReplaceResult) ([]rowChange, error)) error {
	if r.chunks > 0 && r.s.d.name == "sqlite" {
		t := time.NewTimer(sqliteChunkGap)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", r.what, context.Cause(ctx))
		}
	}
	r.chunks++
	var c ReplaceResult
	err := r.s.write(ctx, r.what, func(tx *gorm.DB, a authority) ([]rowChange, error) {
		c = ReplaceResult{}
		return fn(tx, a.termNumber(), &c)
	})
	if err != nil {
		return err
	}
	r.res.Added += c.Added
	r.res.Updated += c.Updated
	r.res.Deleted += c.Deleted
	return nil
}

// upserts writes the adds and updates of the source from order[from], in
// batches, until the chunk holds r.rows items or (when timed) ran past its
// budget. It returns how many source items it covered.
func (r *replacer) upserts(tx *gorm.DB, term int64, from int, timed bool, c *ReplaceResult) (int, []rowChange, error) {
	start := time.Now()
	var events []rowChange
	done := 0
	for from+done < len(r.order) && done < r.rows && (!timed || done == 0 || time.Since(start) < r.budget) {
		n := min(r.s.opts.batchSize, r.rows-done, len(r.order)-from-done)
		more, err := r.upsertBatch(tx, term, r.order[from+done:from+done+n], c)
		if err != nil {
			return 0, nil, err
		}
		events = append(events, more...)
		done += n
	}
	return done, events, nil
}

// upsertBatch compares one batch of source items with their rows, read
// under row locks, and writes the differences.
func (r *replacer) upsertBatch(tx *gorm.DB, term int64, batch []int, c *ReplaceResult) ([]rowChange, error) {
	in := make([]stored, len(batch))
	keys := make([]string, len(batch))
	for i, idx := range batch {
		s, err := normalizeItem(r.kind, idx, r.items[idx])
		if err != nil {
			return nil, err // the items changed since they were validated
		}
		in[i], keys[i] = s, s.r.Key
	}
	var cur []current
	where, args := whereKeys(r.kind, keys)
	if err := tx.Raw(`SELECT res_key, resource_version, digest FROM resources`+where+r.s.d.forUpdate, args...).Scan(&cur).Error; err != nil {
		return nil, fmt.Errorf("read current rows: %w", err)
	}
	byKey := make(map[string]current, len(cur))
	for _, row := range cur {
		byKey[row.ResKey] = row
	}
	plan := replacePlan{kind: r.kind}
	at := now().UnixMilli()
	for _, it := range in {
		old, ok := byKey[it.r.Key]
		switch {
		case !ok:
			plan.adds = append(plan.adds, rowOf(it, 1, term, at))
		case old.Digest != it.digest:
			plan.updates = append(plan.updates, rowOf(it, old.ResourceVersion+1, term, at))
		}
	}
	c.Added += len(plan.adds)
	c.Updated += len(plan.updates)
	return plan.apply(tx, r.s)
}

// vanished returns the keys, in key order, that the source does not hold.
// *p is a position in r.order that only moves forward, so that a scan in
// key order over several calls merges in linear time.
func (r *replacer) vanished(keys []string, p *int) []string {
	var out []string
	for _, k := range keys {
		for *p < len(r.order) && r.items[r.order[*p]].Key < k {
			*p++
		}
		if *p == len(r.order) || r.items[r.order[*p]].Key != k {
			out = append(out, k)
		}
	}
	return out
}

// deletePass scans the kind's keys in key order, outside any transaction,
// and deletes those the source does not hold, in chunks.
func (r *replacer) deletePass(ctx context.Context) error {
	after, p := "", 0 // "" sorts before every key: keys are never empty
	var pending []string
	for {
		var keys []string
		q := `SELECT res_key FROM resources WHERE kind = ? AND res_key > ? ORDER BY res_key LIMIT ?`
		if err := r.s.db.WithContext(ctx).Raw(q, r.kind, after, r.rows).Scan(&keys).Error; err != nil {
			return fmt.Errorf("%s: read current keys: %w", r.what, err)
		}
		pending = append(pending, r.vanished(keys, &p)...)
		last := len(keys) < r.rows
		if len(keys) > 0 {
			after = keys[len(keys)-1]
		}
		for len(pending) >= r.rows || (last && len(pending) > 0) {
			var n int
			err := r.chunk(ctx, func(tx *gorm.DB, _ int64, c *ReplaceResult) ([]rowChange, error) {
				var events []rowChange
				var err error
				events, n, err = r.deletes(tx, pending, true, c)
				return events, err
			})
			if err != nil {
				return err
			}
			pending = append(pending[:0], pending[n:]...)
		}
		if last {
			return nil
		}
	}
}

// deletes deletes keys from the start, in batches: each batch's rows are
// read under row locks (the events carry them), then deleted. When timed,
// it stops at the end of the first batch past the budget, or after r.rows
// keys. It returns how many keys it covered.
func (r *replacer) deletes(tx *gorm.DB, keys []string, timed bool, c *ReplaceResult) ([]rowChange, int, error) {
	start := time.Now()
	if timed {
		keys = keys[:min(len(keys), r.rows)]
	}
	var events []rowChange
	done := 0
	for done < len(keys) && (!timed || done == 0 || time.Since(start) < r.budget) {
		n := min(r.s.opts.batchSize, len(keys)-done)
		var old []resourceRow
		where, args := whereKeys(r.kind, keys[done:done+n])
		if err := tx.Raw(selectResource+where+r.s.d.forUpdate, args...).Scan(&old).Error; err != nil {
			return nil, 0, fmt.Errorf("read rows to delete: %w", err)
		}
		more, err := replacePlan{kind: r.kind, deletes: old}.apply(tx, r.s)
		if err != nil {
			return nil, 0, err
		}
		events = append(events, more...)
		c.Deleted += len(old)
		done += n
	}
	return events, done, nil
}

// replacePlan is what one batch of a Replace writes.
type replacePlan struct {
	kind    string
	adds    []resourceRow
	updates []resourceRow
	deletes []resourceRow // only Kind, ResKey and the old row's columns
}

// apply runs the batches (deletes, then adds, then updates, each in key
// order) and returns the events of the changes.
func (p replacePlan) apply(tx *gorm.DB, s *GORM) ([]rowChange, error) {
	events := make([]rowChange, 0, len(p.adds)+len(p.updates)+len(p.deletes))
	for batch := range batches(p.deletes, s.opts.batchSize) {
		keys := make([]string, len(batch))
		for i, r := range batch {
			keys[i] = r.ResKey
		}
		where, args := whereKeys(p.kind, keys)
		if err := tx.Exec(`DELETE FROM resources`+where, args...).Error; err != nil {
			return nil, fmt.Errorf("delete %d rows: %w", len(batch), err)
		}
		for _, r := range batch {
			if err := s.changed(tx, OpDelete, r); err != nil {
				return nil, err
			}
			events = append(events, rowChange{Deleted, r})
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
				if err := s.changed(tx, step.op, r); err != nil {
					return nil, err
				}
				events = append(events, rowChange{Upserted, r})
			}
		}
	}
	return events, nil
}

// changed runs the hook, if any, for one written row.
func (s *GORM) changed(tx *gorm.DB, op string, r resourceRow) error {
	if s.opts.txHook == nil {
		return nil
	}
	res, err := r.resource()
	if err != nil {
		return err
	}
	return s.hook(tx, op, res)
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
