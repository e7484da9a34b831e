package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// openSQLite opens a fresh SQLite database in a temporary directory with
// the lease and resources tables, as a replica does at start.
func openSQLite(ctx context.Context) (db *gorm.DB, lease *leader.Lease, st *store.GORM, done func()) {
	dir, err := os.MkdirTemp("", "store-example-")
	if err != nil {
		panic(err)
	}
	db, err = database.Open(ctx, database.Config{Driver: database.SQLite, DSN: filepath.Join(dir, "admin.db")})
	if err != nil {
		panic(err)
	}
	lease, _ = leader.NewLease(db)
	st, _ = store.NewGORM(db)
	if err := lease.Migrate(ctx); err != nil {
		panic(err)
	}
	if err := st.Migrate(ctx); err != nil {
		panic(err)
	}
	return db, lease, st, func() { _ = database.Close(db); _ = os.RemoveAll(dir) }
}

// A fenced write: the context carries the writer's leader.Term (the runtime
// hands leader components such a context), and the GORM store commits the
// write only if, in the same transaction, the lease row still names that
// holder and term and has not expired. Once another holder has taken the
// lease, the old term's writes fail with ErrFenced and change nothing.
func ExampleGORM_fenced() {
	ctx := context.Background()
	_, lease, st, done := openSQLite(ctx)
	defer done()

	// replica-a leads term 1. (Leader components get this context from the
	// runtime; here the lease is taken by hand.)
	recA, _ := lease.TryAcquire(ctx, "example", "replica-a", time.Minute)
	termA := leader.WithTerm(ctx, recA.TermOf())
	r, err := st.Upsert(termA, store.Resource{Kind: "Heartbeat", Key: "example", Spec: []byte(`{"beat":1}`)})
	fmt.Println("replica-a writes:", err, "term", r.Term, "version", r.ResourceVersion)

	// replica-b takes over (an operator's forced release, then an acquire):
	// term 2. replica-a does not know yet; its context is still live.
	_, _ = lease.ForceRelease(ctx, "example")
	recB, _ := lease.TryAcquire(ctx, "example", "replica-b", time.Minute)
	_, err = st.Upsert(termA, store.Resource{Kind: "Heartbeat", Key: "example", Spec: []byte(`{"beat":2}`)})
	fmt.Println("replica-a after the takeover is fenced:", errors.Is(err, store.ErrFenced))

	r, _ = st.Get(ctx, "Heartbeat", "example")
	fmt.Println("stored:", string(r.Spec), "term", r.Term, "version", r.ResourceVersion)

	r, err = st.Upsert(leader.WithTerm(ctx, recB.TermOf()), store.Resource{Kind: "Heartbeat", Key: "example", Spec: []byte(`{"beat":2}`)})
	fmt.Println("replica-b writes:", err, "term", r.Term, "version", r.ResourceVersion)
	// Output:
	// replica-a writes: <nil> term 1 version 1
	// replica-a after the takeover is fenced: true
	// stored: {"beat":1} term 1 version 1
	// replica-b writes: <nil> term 2 version 2
}

// Every write needs a permission on its context: a leader.Term (fenced), or
// Unfenced for tools, tests and setups that own the store outright, whose
// writes are stamped with term 0. Reads need neither.
func ExampleUnfenced() {
	ctx := context.Background()
	st := store.NewMemory()

	_, err := st.Upsert(ctx, store.Resource{Kind: "Item", Key: "a", Spec: []byte(`{}`)})
	fmt.Println("no term:", errors.Is(err, store.ErrNoTerm))

	r, err := st.Upsert(store.Unfenced(ctx), store.Resource{Kind: "Item", Key: "a", Spec: []byte(`{}`)})
	fmt.Println("unfenced:", err, "term", r.Term)
	// Output:
	// no term: true
	// unfenced: <nil> term 0
}

// runtime.NewNoElection (single-replica mode) hands out term 1 of its
// election without any lease row. The memory store stamps that term without
// checking it; the GORM store checks every term against table
// leader_leases, finds no row, and refuses the write. NoElection therefore
// goes with the memory store only.
func ExampleMemory_noElection() {
	ctx := context.Background()
	ls, err := runtime.NewNoElection("example", "replica-1").Campaign(ctx)
	if err != nil {
		panic(err)
	}
	defer func() { _ = ls.Resign(ctx) }()
	termCtx := ls.Context() // what a leader component's Start receives
	item := store.Resource{Kind: "Item", Key: "a", Spec: []byte(`{}`)}

	r, err := store.NewMemory().Upsert(termCtx, item)
	fmt.Println("memory:", err, "term", r.Term)

	_, _, gormStore, done := openSQLite(ctx)
	defer done()
	_, err = gormStore.Upsert(termCtx, item)
	fmt.Println("gorm fenced:", errors.Is(err, store.ErrFenced))
	// Output:
	// memory: <nil> term 1
	// gorm fenced: true
}
