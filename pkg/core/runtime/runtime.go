package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Errors of the runtime; test them with errors.Is.
var (
	// ErrElectionSetup: the election could not be set up (lease table,
	// dialect, config). Start fails with it rather than run unelected.
	ErrElectionSetup = errors.New("leader election setup failed")
	// ErrInvalidOptions is wrapped by every Options validation error.
	ErrInvalidOptions = errors.New("invalid runtime options")
	// ErrDuplicateComponent: two components share a name.
	ErrDuplicateComponent = errors.New("duplicate component name")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("runtime already started")
	// ErrStopped: the runtime was stopped; it cannot start again.
	ErrStopped = errors.New("runtime stopped")
	// ErrDrainTimeout: leader components did not return within the drain
	// timeout after their term ended; it is what FailStop receives.
	ErrDrainTimeout = errors.New("leader components did not return within the drain timeout")
	// ErrShutdown is the cause of a term context cancelled by Stop.
	ErrShutdown = errors.New("runtime shutting down")
)

// Runtime runs components: the non-leader ones on every replica for the
// runtime's life, the leader ones only while this replica leads, all under
// one election. See the package doc for the state machine.
type Runtime struct {
	log        logr.Logger
	elector    leader.Elector
	components []Component // sorted by Order, then Name
	opts       Options
	book       *statusBook

	// stopCtx is cancelled by Stop; it ends campaigns, waits and the
	// non-leader components.
	stopCtx    context.Context
	stopCancel context.CancelCauseFunc

	mu           sync.Mutex
	current      leader.Leadership // the term being led or drained, else nil
	started      bool
	launched     bool
	others       *group
	othersCancel context.CancelFunc
	runnerDone   chan struct{}
}

// New returns a runtime of components under elector. It does no I/O; Start
// does the work.
func New(log logr.Logger, elector leader.Elector, components []Component, opts Options) (*Runtime, error) {
	if elector == nil {
		return nil, fmt.Errorf("%w: no elector (use NewNoElection for single-replica mode)", ErrInvalidOptions)
	}
	opts, err := opts.withDefaults(log)
	if err != nil {
		return nil, err
	}
	cs := slices.Clone(components)
	slices.SortStableFunc(cs, func(a, b Component) int {
		return cmp.Or(cmp.Compare(orderOf(a), orderOf(b)), cmp.Compare(a.Name(), b.Name()))
	})
	for i := 1; i < len(cs); i++ {
		if cs[i].Name() == cs[i-1].Name() {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateComponent, cs[i].Name())
		}
	}
	r := &Runtime{
		log:        log,
		elector:    elector,
		components: cs,
		opts:       opts,
		book:       newStatusBook(cs),
		runnerDone: make(chan struct{}),
	}
	r.stopCtx, r.stopCancel = context.WithCancelCause(context.Background())
	return r, nil
}

// Components returns the components in the order the runtime runs them.
func (r *Runtime) Components() []Component { return slices.Clone(r.components) }

// Start prepares the election (fail closed: an error here is
// ErrElectionSetup), runs every Init in order, starts the non-leader
// components, then the leader runner, and returns; it does not wait to be
// elected. It fails if any step fails, having started nothing.
func (r *Runtime) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return ErrAlreadyStarted
	}
	r.started = true
	r.mu.Unlock()
	if r.stopCtx.Err() != nil {
		return ErrStopped
	}

	if err := r.elector.Prepare(ctx); err != nil {
		if !errors.Is(err, ErrElectionSetup) {
			err = fmt.Errorf("%w: %w", ErrElectionSetup, err)
		}
		return err
	}
	for _, c := range r.components {
		if err := c.Init(ctx); err != nil {
			return fmt.Errorf("init component %q: %w", c.Name(), err)
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopCtx.Err() != nil {
		return ErrStopped
	}
	// The non-leader components outlive the election: Stop cancels them only
	// after the runner has released the lease.
	othersCtx, cancel := context.WithCancel(context.Background())
	r.others, r.othersCancel = startGroup(othersCtx, r.restarters(false, nil)), cancel
	go r.runLeader()
	r.launched = true
	return nil
}

// Stop shuts the runtime down: it cancels the term context, waits for the
// leader components (bounded by DrainTimeout, then FailStop), releases the
// lease as the very last step of the election, then cancels the non-leader
// components and waits for them. It works in every role and is idempotent;
// ctx bounds the waiting, not the order.
func (r *Runtime) Stop(ctx context.Context) error {
	r.mu.Lock()
	r.stopCancel(ErrShutdown)
	launched := r.launched
	r.mu.Unlock()
	if !launched {
		return nil
	}
	select {
	case <-r.runnerDone:
	case <-ctx.Done():
		return fmt.Errorf("stop runtime: wait for the leader runner: %w", ctx.Err())
	}
	r.othersCancel()
	if err := r.others.waitCtx(ctx); err != nil {
		return fmt.Errorf("stop runtime: wait for components: %w", err)
	}
	return nil
}

// Status returns a snapshot of the role, the term, the leader and every
// component.
func (r *Runtime) Status() Status {
	return r.book.snapshot(r.elector.Observed)
}

// Leadership is the term this replica leads or drains right now, or nil:
// for health checks and metrics that read its renewals.
func (r *Runtime) Leadership() leader.Leadership {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

func (r *Runtime) setLeadership(ls leader.Leadership) {
	r.mu.Lock()
	r.current = ls
	r.mu.Unlock()
}

// Subscribe delivers every role change from now on, until ctx ends or the
// runtime stops; then the channel is closed. Delivery never blocks the
// runtime: a subscriber more than SubscriberBuffer changes behind loses the
// oldest (RoleChange.Seq shows the gap).
func (r *Runtime) Subscribe(ctx context.Context) <-chan RoleChange {
	return r.book.subscribe(ctx)
}

// restarters returns the supervisors of the leader (or non-leader)
// components. fenced, for leader components, ends the term when one of them
// reports that a write was fenced.
func (r *Runtime) restarters(leaderOnly bool, fenced func(error)) []restarter {
	var rs []restarter
	for i, c := range r.components {
		if NeedsLeader(c) == leaderOnly {
			rs = append(rs, restarter{c: c, idx: i, backoff: r.opts.Backoff, book: r.book, log: r.log, fenced: fenced})
		}
	}
	return rs
}
