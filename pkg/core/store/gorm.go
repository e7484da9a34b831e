package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// GORM is the shared backend: table resources in Admin's database (SQLite,
// MySQL/MariaDB or PostgreSQL), next to leader_leases. Every replica reads
// it; the leader writes it with fenced transactions.
//
// Writes of one GORM value are serialised (one write transaction at a time
// per replica), so its subscribers see events in commit order.
type GORM struct {
	db     *gorm.DB
	d      sqlDialect
	opts   options
	notify *notifier
	// writing is a semaphore of one: a write holds it from the start of its
	// transaction until its events are published.
	writing chan struct{}
}

var _ ResourceStore = (*GORM)(nil)

// NewGORM returns the store on db. It does not touch the database; call
// Migrate before the first use.
func NewGORM(db *gorm.DB, opts ...Option) (*GORM, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: store: nil *gorm.DB", ErrInvalid)
	}
	d, err := sqlDialectOf(db)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	if o.batchSize == 0 {
		o.batchSize = d.batchSize
	}
	return &GORM{db: db, d: d, opts: o, notify: newNotifier(o.eventBuffer), writing: make(chan struct{}, 1)}, nil
}

// Migrate creates table resources if it does not exist, with hand-written
// DDL per dialect (not AutoMigrate, which races). Several replicas may run
// it at once.
func (s *GORM) Migrate(ctx context.Context) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.d.migrateLock != "" {
			if err := tx.Exec(s.d.migrateLock).Error; err != nil {
				return err
			}
		}
		return tx.Exec(s.d.createTable).Error
	})
	if err != nil {
		return fmt.Errorf("create table resources on %s: %w", s.d.name, err)
	}
	return nil
}

// Shared is true: every replica opening the database sees the same rows.
func (s *GORM) Shared() bool { return true }

// Get returns the resource or ErrNotFound.
func (s *GORM) Get(ctx context.Context, kind, key string) (Resource, error) {
	if err := validateKindKey(kind, key); err != nil {
		return Resource{}, fmt.Errorf("get: %w", err)
	}
	rows, err := s.selectKey(s.db.WithContext(ctx), kind, key, "")
	if err != nil {
		return Resource{}, fmt.Errorf("get %s/%s: %w", kind, key, err)
	}
	if len(rows) == 0 {
		return Resource{}, fmt.Errorf("get %s/%s: %w", kind, key, ErrNotFound)
	}
	return rows[0].resource()
}

// listChunk is how many rows a label-filtered List reads per query.
const listChunk = 1000

// List returns one page of kind in key order. Label selection is done in
// Go on a kind-scoped scan in key order (see the package doc), reading
// chunks until the page is full.
func (s *GORM) List(ctx context.Context, kind string, opts ListOptions) (ListResult, error) {
	after, err := validateList(kind, opts)
	if err != nil {
		return ListResult{}, fmt.Errorf("list: %w", err)
	}
	want := 0 // rows wanted: limit+1 tells whether another page exists
	if opts.Limit > 0 {
		want = opts.Limit + 1
	}
	chunk := want
	if len(opts.Labels) > 0 {
		chunk = listChunk
	}
	items := []Resource{}
	for {
		q := selectResource + ` WHERE kind = ? AND res_key > ? ORDER BY res_key`
		args := []any{kind, after}
		if chunk > 0 {
			q += ` LIMIT ?`
			args = append(args, chunk)
		}
		var rows []resourceRow
		if err := s.db.WithContext(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
			return ListResult{}, fmt.Errorf("list %s: %w", kind, err)
		}
		for _, row := range rows {
			r, err := row.resource()
			if err != nil {
				return ListResult{}, err
			}
			if !matches(r.Labels, opts.Labels) {
				continue
			}
			items = append(items, r)
			if want > 0 && len(items) == want {
				return page(items, opts.Limit), nil
			}
		}
		if chunk == 0 || len(rows) < chunk {
			return page(items, opts.Limit), nil
		}
		after = rows[len(rows)-1].ResKey
	}
}

// Upsert creates or replaces the resource and bumps its version, in one
// fenced transaction.
func (s *GORM) Upsert(ctx context.Context, r Resource) (Resource, error) {
	in, err := normalize(r)
	if err != nil {
		return Resource{}, fmt.Errorf("upsert: %w", err)
	}
	var out Resource
	err = s.write(ctx, "upsert "+r.Kind+"/"+r.Key, func(tx *gorm.DB, a authority) ([]rowChange, error) {
		old, err := s.selectKey(tx, r.Kind, r.Key, s.d.forUpdate)
		if err != nil {
			return nil, err
		}
		row := rowOf(in, 1, a.termNumber(), now().UnixMilli())
		op := OpAdd
		if len(old) == 0 {
			err = tx.Exec(insertRows(1), row.args()...).Error
		} else {
			op = OpUpdate
			row.ResourceVersion = old[0].ResourceVersion + 1
			err = tx.Exec(`UPDATE resources SET labels = ?, spec = ?, digest = ?, resource_version = ?, term = ?, updated_at = ? WHERE kind = ? AND res_key = ?`,
				row.Labels, row.Spec, row.Digest, row.ResourceVersion, row.Term, row.UpdatedAt, row.Kind, row.ResKey).Error
		}
		if err != nil {
			return nil, err
		}
		out = in.r
		out.ResourceVersion, out.Term, out.UpdatedAt = row.ResourceVersion, row.Term, time.UnixMilli(row.UpdatedAt)
		if err := s.hook(tx, op, out); err != nil {
			return nil, err
		}
		return []rowChange{{Upserted, row}}, nil
	})
	if err != nil {
		return Resource{}, err
	}
	return out, nil
}

// Delete removes the resource, in one fenced transaction, or returns
// ErrNotFound (and changes nothing).
func (s *GORM) Delete(ctx context.Context, kind, key string) error {
	if err := validateKindKey(kind, key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return s.write(ctx, "delete "+kind+"/"+key, func(tx *gorm.DB, _ authority) ([]rowChange, error) {
		old, err := s.selectKey(tx, kind, key, s.d.forUpdate)
		if err != nil {
			return nil, err
		}
		if len(old) == 0 {
			return nil, ErrNotFound
		}
		r, err := old[0].resource()
		if err != nil {
			return nil, err
		}
		if err := tx.Exec(`DELETE FROM resources WHERE kind = ? AND res_key = ?`, kind, key).Error; err != nil {
			return nil, err
		}
		if err := s.hook(tx, OpDelete, r); err != nil {
			return nil, err
		}
		return []rowChange{{Deleted, old[0]}}, nil
	})
}

// Reset ends every subscription of this replica, dropping the events they
// had not delivered. The GORM backend keeps no other per-term state:
// Replace reads what it compares inside its own transaction. Shared rows
// are never touched.
func (s *GORM) Reset(context.Context) error {
	s.notify.reset()
	return nil
}

// Subscribe delivers the changes this replica commits from now on (see
// ResourceStore). Changes committed by other replicas are not delivered.
func (s *GORM) Subscribe(ctx context.Context) <-chan Event { return s.notify.subscribe(ctx) }

// rowChange is one row a write changed: its event is built from the row
// once the write committed, and only if someone subscribed (a Replace of
// a large kind would otherwise copy every row it writes once more).
type rowChange struct {
	typ EventType
	row resourceRow
}

// write runs fn in one transaction that starts with the fence, then
// publishes the events of fn's changes once the transaction committed.
func (s *GORM) write(ctx context.Context, what string, fn func(tx *gorm.DB, a authority) ([]rowChange, error)) error {
	a, err := authorize(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	select {
	case s.writing <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	defer func() { <-s.writing }()
	var changes []rowChange
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := a.fence(tx); err != nil {
			return err
		}
		var err error
		changes, err = fn(tx, a)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	s.notify.publishFunc(len(changes), func(i int) Event {
		c := changes[i]
		r, err := c.row.resource()
		if err != nil { // a deleted row whose labels do not decode: reported without them
			r, _ = resourceRow{Kind: c.row.Kind, ResKey: c.row.ResKey, Spec: c.row.Spec, ResourceVersion: c.row.ResourceVersion,
				Term: c.row.Term, UpdatedAt: c.row.UpdatedAt}.resource()
		}
		return Event{Type: c.typ, Resource: r}
	})
	return nil
}

func (s *GORM) hook(tx *gorm.DB, op string, r Resource) error {
	if s.opts.txHook == nil {
		return nil
	}
	if err := s.opts.txHook(tx, op, r); err != nil {
		return fmt.Errorf("tx hook (%s %s/%s): %w", op, r.Kind, r.Key, err)
	}
	return nil
}

func (s *GORM) selectKey(db *gorm.DB, kind, key, lock string) ([]resourceRow, error) {
	var rows []resourceRow
	err := db.Raw(selectResource+` WHERE kind = ? AND res_key = ?`+lock, kind, key).Scan(&rows).Error
	return rows, err
}

// errCorrupt wraps a row the store cannot decode.
var errCorrupt = errors.New("stored row is corrupt")

func (r resourceRow) resource() (Resource, error) {
	out := Resource{
		Kind: r.Kind, Key: r.ResKey, Spec: json.RawMessage(r.Spec),
		ResourceVersion: r.ResourceVersion, Term: r.Term, UpdatedAt: time.UnixMilli(r.UpdatedAt),
	}
	if r.Labels != "" && r.Labels != "{}" {
		if err := json.Unmarshal([]byte(r.Labels), &out.Labels); err != nil {
			return Resource{}, fmt.Errorf("%w: %s/%s: labels: %v", errCorrupt, r.Kind, r.ResKey, err)
		}
	}
	return out, nil
}
