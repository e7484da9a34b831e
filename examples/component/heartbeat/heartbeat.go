// Package heartbeat is a minimal leader-only component, written to be
// copied: every Interval, the leader writes one Heartbeat resource that
// names it and its term. The write is fenced: it carries the term context
// the runtime hands to Start, so a replica that lost its term cannot land
// it (store.ErrFenced).
//
// It shows the whole contract of docs/components.md in one file:
//
//   - Name, and NeedLeaderElection returning true (leader only);
//   - Init checks the configuration and starts nothing;
//   - Start builds everything it uses (here a ticker) anew, writes with the
//     ctx it was given, and returns nil as soon as ctx is cancelled;
//   - any other error is returned, and the runtime restarts Start with
//     backoff inside the term.
//
// The app runs it when heartbeat.interval is set (app/heartbeat.go).
package heartbeat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Name is the component's name (in the status API and the logs).
const Name = "heartbeat"

// Kind is the kind of the resource it writes; the key is the election name,
// so there is one Heartbeat per election.
const Kind = "Heartbeat"

// ErrNoTerm: Start or Beat was called with a context that carries no term,
// that is, not by the runtime as a leader component.
var ErrNoTerm = errors.New("heartbeat: context carries no leader term")

// Spec is the JSON spec of a Heartbeat resource.
type Spec struct {
	// Holder and Term name the leader that wrote it.
	Holder string `json:"holder"`
	Term   int64  `json:"term"`
	// At is the writer's local clock, for humans only.
	At time.Time `json:"at"`
}

// Config configures the component.
type Config struct {
	// Interval is the time between two heartbeats; it must be positive.
	Interval time.Duration
}

// Heartbeat is the component. It keeps no state between two Starts.
type Heartbeat struct {
	cfg   Config
	store store.ResourceStore
	log   logr.Logger
}

var (
	_ runtime.Component              = (*Heartbeat)(nil)
	_ runtime.LeaderElectionRunnable = (*Heartbeat)(nil)
)

// New returns the component; it does nothing until the runtime starts it.
func New(cfg Config, st store.ResourceStore, log logr.Logger) *Heartbeat {
	return &Heartbeat{cfg: cfg, store: st, log: log.WithName(Name)}
}

// Name implements runtime.Component.
func (h *Heartbeat) Name() string { return Name }

// NeedLeaderElection is true: only the leader writes heartbeats.
func (h *Heartbeat) NeedLeaderElection() bool { return true }

// Init runs on every replica before any election: it checks the
// configuration and starts nothing.
func (h *Heartbeat) Init(context.Context) error {
	if h.store == nil {
		return errors.New("heartbeat: no store")
	}
	if h.cfg.Interval <= 0 {
		return fmt.Errorf("heartbeat: interval is %v: must be positive", h.cfg.Interval)
	}
	return nil
}

// Start writes a heartbeat at once, then every Interval, until ctx (the term
// context) is cancelled; then it returns nil. A failed write ends Start with
// the error: after store.ErrFenced the term is over and the runtime is about
// to cancel ctx; after any other error the runtime starts it again with
// backoff.
func (h *Heartbeat) Start(ctx context.Context) error {
	tick := time.NewTicker(h.cfg.Interval) // built anew on every Start
	defer tick.Stop()
	for {
		if _, err := h.Beat(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // cancelled while writing: a clean stop
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Beat writes one heartbeat with ctx, which must carry the term (see
// leader.TermFrom), and returns the resource as stored: its Term is the
// writer's term number.
func (h *Heartbeat) Beat(ctx context.Context) (store.Resource, error) {
	term, ok := leader.TermFrom(ctx)
	if !ok {
		return store.Resource{}, ErrNoTerm
	}
	spec, err := json.Marshal(Spec{Holder: term.Holder, Term: term.Number, At: time.Now().UTC()})
	if err != nil {
		return store.Resource{}, fmt.Errorf("heartbeat: %w", err)
	}
	r, err := h.store.Upsert(ctx, store.Resource{Kind: Kind, Key: term.Election, Spec: spec})
	if err != nil {
		return store.Resource{}, fmt.Errorf("heartbeat of term %d: %w", term.Number, err)
	}
	return r, nil
}
