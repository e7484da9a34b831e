package runtime

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Role is where the leader runner is in its state machine (see the package
// doc).
type Role string

// Roles.
const (
	RoleNotStarted Role = "NotStarted"
	RoleCandidate  Role = "Candidate"
	RoleLeading    Role = "Leading"
	RoleDraining   Role = "Draining"
	RoleStopped    Role = "Stopped"
)

// ComponentState is what one component is doing.
type ComponentState string

// Component states.
const (
	// ComponentPending: not started yet (a leader component on a follower).
	ComponentPending ComponentState = "Pending"
	// ComponentRunning: inside Start.
	ComponentRunning ComponentState = "Running"
	// ComponentBackingOff: Start failed; waiting to start it again.
	ComponentBackingOff ComponentState = "BackingOff"
	// ComponentStopped: Start returned after its context was cancelled.
	ComponentStopped ComponentState = "Stopped"
	// ComponentExited: Start returned nil while its context was live; it is
	// not restarted until the next term (or ever, for a non-leader one).
	ComponentExited ComponentState = "Exited"
)

// ComponentStatus is one component in a Status.
type ComponentStatus struct {
	Name       string         `json:"name"`
	LeaderOnly bool           `json:"leaderOnly"`
	Order      int            `json:"order"`
	State      ComponentState `json:"state"`
	// Since is when State was entered (local clock).
	Since time.Time `json:"since"`
	// Starts counts calls of Start over the runtime's life.
	Starts int `json:"starts"`
	// Restarts counts failures that led to a restart with backoff.
	Restarts    int       `json:"restarts"`
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// NextStart is when a component that is BackingOff starts again.
	NextStart time.Time `json:"nextStart,omitzero"`
}

// Status is a read-only snapshot of the runtime.
type Status struct {
	Role Role `json:"role"`
	// Since is when Role was entered (local clock).
	Since time.Time `json:"since"`
	// Term is this replica's term while Leading or Draining, else zero.
	Term leader.Term `json:"term"`
	// Leader is the holder as this replica knows it: itself while Leading or
	// Draining, else the lease as the elector last observed it (empty when
	// free or unknown).
	Leader     string            `json:"leader,omitempty"`
	LeaderTerm int64             `json:"leaderTerm,omitempty"`
	Components []ComponentStatus `json:"components"`
}

// RoleChange is one transition of the leader runner.
type RoleChange struct {
	// Seq numbers the changes of one runtime from 1; a gap means the
	// subscriber fell behind and older changes were dropped.
	Seq    uint64      `json:"seq"`
	From   Role        `json:"from"`
	To     Role        `json:"to"`
	Term   leader.Term `json:"term"`
	Reason string      `json:"reason,omitempty"`
	At     time.Time   `json:"at"`
}

// SubscriberBuffer is how many role changes a subscriber may fall behind
// before the oldest undelivered one is dropped.
const SubscriberBuffer = 16

// statusBook holds everything Status reports and the role subscribers. The
// leader runner and the restarters write it; readers get copies.
type statusBook struct {
	mu         sync.Mutex
	role       Role
	since      time.Time
	term       leader.Term
	components []ComponentStatus
	seq        uint64
	subs       map[*subscriber]struct{}
	closed     bool
}

type subscriber struct {
	ch chan RoleChange
}

func newStatusBook(cs []Component) *statusBook {
	b := &statusBook{role: RoleNotStarted, since: time.Now(), subs: map[*subscriber]struct{}{}}
	for _, c := range cs {
		b.components = append(b.components, ComponentStatus{
			Name: c.Name(), LeaderOnly: NeedsLeader(c), Order: orderOf(c),
			State: ComponentPending, Since: b.since,
		})
	}
	return b
}

// setRole records a transition and hands it to every subscriber without
// blocking: a full subscriber loses its oldest pending change.
func (b *statusBook) setRole(to Role, term leader.Term, reason string) RoleChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ch := RoleChange{Seq: b.seq, From: b.role, To: to, Term: term, Reason: reason, At: time.Now()}
	b.role, b.since, b.term = to, ch.At, term
	for s := range b.subs {
		select {
		case s.ch <- ch:
		default:
			select {
			case <-s.ch:
			default:
			}
			s.ch <- ch // cannot block: only setRole sends, under b.mu
		}
	}
	if to == RoleStopped {
		b.closeAll()
	}
	return ch
}

func (b *statusBook) current() (Role, leader.Term) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.role, b.term
}

func (b *statusBook) subscribe(ctx context.Context) <-chan RoleChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &subscriber{ch: make(chan RoleChange, SubscriberBuffer)}
	if b.closed {
		close(s.ch)
		return s.ch
	}
	b.subs[s] = struct{}{}
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	})
	return s.ch
}

func (b *statusBook) closeAll() {
	b.closed = true
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
}

func (b *statusBook) snapshot(observe func() leader.Record) Status {
	b.mu.Lock()
	st := Status{Role: b.role, Since: b.since, Term: b.term, Components: slices.Clone(b.components)}
	b.mu.Unlock()
	switch {
	case st.Role == RoleLeading || st.Role == RoleDraining:
		st.Leader, st.LeaderTerm = st.Term.Holder, st.Term.Number
	default:
		if rec := observe(); rec.Held() {
			st.Leader, st.LeaderTerm = rec.Holder, rec.Term
		}
	}
	return st
}

func (b *statusBook) update(idx int, f func(*ComponentStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.components[idx])
}

func (b *statusBook) componentRunning(idx int) {
	b.update(idx, func(c *ComponentStatus) {
		c.State, c.Since, c.NextStart = ComponentRunning, time.Now(), time.Time{}
		c.Starts++
	})
}

func (b *statusBook) componentStopped(idx int) {
	b.update(idx, func(c *ComponentStatus) { c.State, c.Since, c.NextStart = ComponentStopped, time.Now(), time.Time{} })
}

func (b *statusBook) componentExited(idx int) {
	b.update(idx, func(c *ComponentStatus) { c.State, c.Since = ComponentExited, time.Now() })
}

// componentFailed records a failure and returns the restart count.
func (b *statusBook) componentFailed(idx int, err error, delay time.Duration) int {
	var n int
	b.update(idx, func(c *ComponentStatus) {
		now := time.Now()
		c.State, c.Since = ComponentBackingOff, now
		c.Restarts++
		c.LastError, c.LastErrorAt, c.NextStart = err.Error(), now, now.Add(delay)
		n = c.Restarts
	})
	return n
}
