package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/go-logr/logr"
	"go.uber.org/fx"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// upstream stands for the system a component mirrors (a registry, a
// cluster): a full List, and a Watch that delivers changes.
type upstream struct {
	items   []string
	changes chan string
}

func newUpstream(items ...string) *upstream {
	return &upstream{items: items, changes: make(chan string)}
}

func (u *upstream) Watch(context.Context) <-chan string { return u.changes }
func (u *upstream) List(context.Context) []string       { return u.items }

// mirror is a leader-only component: in every term it watches the upstream,
// lists it, replaces kind Item in the store with the list, then upserts each
// change, until its term context is cancelled. Every write uses that
// context, so the store fences it with the term it carries.
type mirror struct {
	up    *upstream
	store store.ResourceStore
}

func newMirror(up *upstream, st store.ResourceStore) *mirror { return &mirror{up: up, store: st} }

func (m *mirror) Name() string             { return "mirror" }
func (m *mirror) NeedLeaderElection() bool { return true }

// Init runs on every replica before the election: check, start nothing.
func (m *mirror) Init(context.Context) error {
	if m.store == nil {
		return errors.New("mirror: no store")
	}
	return nil
}

// Start is one term. Everything it uses is built here, anew each term.
func (m *mirror) Start(ctx context.Context) error {
	changes := m.up.Watch(ctx) // watch first: nothing between Watch and List is lost
	var items []store.Resource
	for _, name := range m.up.List(ctx) {
		items = append(items, item(name))
	}
	if _, err := m.store.Replace(ctx, "Item", items); err != nil {
		return err // the runtime restarts Start with backoff (or the term is over)
	}
	for {
		select {
		case <-ctx.Done():
			return nil // return promptly: the runtime waits for this before the next term
		case name := <-changes:
			if _, err := m.store.Upsert(ctx, item(name)); err != nil {
				return err
			}
		}
	}
}

func item(name string) store.Resource {
	return store.Resource{Kind: "Item", Key: name, Spec: []byte(`{}`)}
}

// A leader-only component that list-watches and writes fenced, run by a
// runtime that elects through a real lease on SQLite (a file in a temporary
// directory), as a replica of Admin does.
func Example_leaderComponent() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "runtime-example-")
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, database.Config{Driver: database.SQLite, DSN: filepath.Join(dir, "admin.db")})
	if err != nil {
		panic(err)
	}
	defer database.Close(db)
	st, _ := store.NewGORM(db)
	if err := st.Migrate(ctx); err != nil {
		panic(err)
	}
	cfg := leader.DefaultConfig()
	cfg.Name = "example"
	epochs, err := leader.NewEpochs(db)
	if err != nil {
		panic(err)
	}
	el, err := leader.NewLeaseElector(db, epochs, cfg, leader.WithIdentity("replica-1"))
	if err != nil {
		panic(err)
	}

	up := newUpstream("a", "b")
	written := st.Subscribe(ctx) // this replica's committed writes
	rt, err := runtime.New(logr.Discard(), el, []runtime.Component{newMirror(up, st)}, runtime.Options{Resetter: st})
	if err != nil {
		panic(err)
	}
	if err := rt.Start(ctx); err != nil { // Prepare (lease table), Init, campaign
		panic(err)
	}
	<-written
	<-written         // the Replace of a and b
	up.changes <- "c" // a change, seen by the watch
	<-written
	if err := rt.Stop(ctx); err != nil { // cancel the term, drain, release the lease
		panic(err)
	}

	list, _ := st.List(ctx, "Item", store.ListOptions{})
	for _, r := range list.Items {
		fmt.Printf("%s written by term %d\n", r.Key, r.Term)
	}
	// A write with a term that is no longer the live lease changes nothing.
	_, err = st.Upsert(leader.WithTerm(ctx, leader.Term{Election: "example", Holder: "replica-1", Number: 1}), item("d"))
	fmt.Println("after the term:", errors.Is(err, store.ErrFenced))
	// Output:
	// a written by term 1
	// b written by term 1
	// c written by term 1
	// after the term: true
}

// Registering components through fx: runtime.Module builds the runtime from
// the components group, and runtime.AsComponent puts a constructor's result
// in it. SingleReplica runs without election, with the memory store.
func ExampleModule() {
	var (
		rt *runtime.Runtime
		st *store.Memory
	)
	app := fx.New(
		fx.NopLogger,
		runtime.Module,
		fx.Supply(logr.Discard(), leader.Config{Name: "example"},
			runtime.Options{SingleReplica: true, Identity: "replica-1"}),
		fx.Provide(
			func() *upstream { return newUpstream("a", "b") },
			func() *store.Memory { return store.NewMemory() },
			func(m *store.Memory) store.ResourceStore { return m },
			func(m *store.Memory) runtime.Resetter { return m }, // the runtime resets it after a lost term
			runtime.AsComponent(newMirror),
		),
		fx.Populate(&rt, &st),
	)
	ctx := context.Background()
	written := st.Subscribe(ctx)
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	<-written
	<-written
	if err := app.Stop(ctx); err != nil {
		panic(err)
	}
	list, _ := st.List(ctx, "Item", store.ListOptions{})
	for _, r := range list.Items {
		fmt.Printf("%s written by term %d\n", r.Key, r.Term)
	}
	for _, c := range rt.Status().Components {
		fmt.Println(c.Name, c.State)
	}
	// Output:
	// a written by term 1
	// b written by term 1
	// mirror Stopped
}

// Reading the status snapshot: the role, the term and, per component, its
// state, starts, restarts and last error. The leader component here fails
// its first Start; the runtime restarts it after the backoff, inside the
// same term.
func ExampleRuntime_Status() {
	ctx := context.Background()
	apiUp, retried := make(chan struct{}), make(chan struct{})
	var attempts atomic.Int32
	components := []runtime.Component{
		// Runs on every replica, leader or not.
		runtime.ComponentFunc("api", func(ctx context.Context) error {
			close(apiUp)
			<-ctx.Done()
			return nil
		}),
		// Runs on the leader only, with the term context.
		runtime.LeaderComponentFunc("sync", func(ctx context.Context) error {
			if attempts.Add(1) == 1 {
				return errors.New("upstream unavailable")
			}
			close(retried)
			<-ctx.Done()
			return nil
		}),
	}
	rt, err := runtime.New(logr.Discard(), runtime.NewNoElection("example", "replica-1"), components, runtime.Options{
		Backoff: runtime.Backoff{Initial: 1e6, Max: 1e9, Factor: 2}, // 1ms, 2ms, ... 1s
	})
	if err != nil {
		panic(err)
	}
	if err := rt.Start(ctx); err != nil {
		panic(err)
	}
	<-apiUp
	<-retried

	st := rt.Status()
	fmt.Println("role:", st.Role, "term:", st.Term.Number, "leader:", st.Leader)
	for _, c := range st.Components {
		fmt.Printf("%s leaderOnly=%t state=%s starts=%d restarts=%d lastError=%q\n",
			c.Name, c.LeaderOnly, c.State, c.Starts, c.Restarts, c.LastError)
	}
	if err := rt.Stop(ctx); err != nil {
		panic(err)
	}
	fmt.Println("role:", rt.Status().Role)
	// Output:
	// role: Leading term: 1 leader: replica-1
	// api leaderOnly=false state=Running starts=1 restarts=0 lastError=""
	// sync leaderOnly=true state=Running starts=2 restarts=1 lastError="upstream unavailable"
	// role: Stopped
}

// Following the role: Subscribe delivers every transition of the leader
// runner without ever blocking it; the channel is closed once the runtime
// stopped.
func ExampleRuntime_Subscribe() {
	ctx := context.Background()
	rt, err := runtime.New(logr.Discard(), runtime.NewNoElection("example", "replica-1"), nil, runtime.Options{})
	if err != nil {
		panic(err)
	}
	changes := rt.Subscribe(ctx)
	if err := rt.Start(ctx); err != nil {
		panic(err)
	}
	for ch := range changes {
		fmt.Printf("%s -> %s (term %d): %s\n", ch.From, ch.To, ch.Term.Number, ch.Reason)
		if ch.To == runtime.RoleLeading {
			if err := rt.Stop(ctx); err != nil {
				panic(err)
			}
		}
	}
	// Output:
	// NotStarted -> Candidate (term 0): started
	// Candidate -> Leading (term 1): elected
	// Leading -> Draining (term 1): runtime shutting down
	// Draining -> Stopped (term 0): runtime stopped
}
