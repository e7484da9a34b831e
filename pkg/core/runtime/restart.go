package runtime

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// ErrPanic is wrapped by the error of a Start that panicked; the runtime
// treats it like any other failure.
var ErrPanic = errors.New("component panicked")

// ErrTermFenced is the cause of a term ended because a leader component's
// write was fenced: the lease row already named another term, so the runner
// stops the term at once instead of restarting the component into it.
var ErrTermFenced = errors.New("term ended: a leader component's write was fenced")

// Backoff is the capped exponential delay before a failed component is
// started again: Initial, then times Factor per consecutive failure, never
// more than Max. A run that lasted at least Max counts as healthy and resets
// the sequence.
type Backoff struct {
	Initial time.Duration `json:"initial" yaml:"initial"`
	Max     time.Duration `json:"max" yaml:"max"`
	Factor  float64       `json:"factor" yaml:"factor"`
}

// DefaultBackoff is 1s, 2s, 4s, ... up to 1 minute.
func DefaultBackoff() Backoff {
	return Backoff{Initial: time.Second, Max: time.Minute, Factor: 2}
}

// Validate reports a backoff that cannot work.
func (b Backoff) Validate() error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("%w: backoff.initial is %v: must be positive", ErrInvalidOptions, b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("%w: backoff.max (%v) must be at least backoff.initial (%v)", ErrInvalidOptions, b.Max, b.Initial)
	case b.Factor < 1:
		return fmt.Errorf("%w: backoff.factor is %v: must be at least 1", ErrInvalidOptions, b.Factor)
	}
	return nil
}

// Delay is the wait after the failures-th consecutive failure (0-based).
func (b Backoff) Delay(failures int) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < failures && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	return min(time.Duration(d), b.Max)
}

// restarter runs one component until its context ends, starting it again
// with backoff when Start fails while the context is live. It is the only
// place that calls Component.Start.
type restarter struct {
	c       Component
	idx     int // index in the status book
	backoff Backoff
	book    *statusBook
	log     logr.Logger
	// fenced, when set, is told of a Start that failed with leader.ErrFenced
	// instead of restarting it: the fence proved that the term is over.
	fenced func(error)
}

func (r restarter) run(ctx context.Context) {
	failures := 0
	for {
		began := time.Now()
		r.book.componentRunning(r.idx)
		err := r.startOnce(ctx)
		if ctx.Err() != nil {
			r.book.componentStopped(r.idx)
			return
		}
		if err == nil {
			r.book.componentExited(r.idx)
			r.log.Info("component returned before its context ended; not restarting it", "component", r.c.Name())
			return
		}
		if r.fenced != nil && errors.Is(err, leader.ErrFenced) {
			r.book.componentStopped(r.idx)
			r.fenced(fmt.Errorf("%w: %s: %w", ErrTermFenced, r.c.Name(), err))
			return
		}
		if time.Since(began) >= r.backoff.Max {
			failures = 0
		}
		delay := r.backoff.Delay(failures)
		failures++
		restarts := r.book.componentFailed(r.idx, err, delay)
		r.log.Error(err, "component failed; restarting after backoff", "component", r.c.Name(), "restarts", restarts, "backoff", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			r.book.componentStopped(r.idx)
			return
		case <-t.C:
		}
	}
}

func (r restarter) startOnce(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, p, debug.Stack())
		}
	}()
	return r.c.Start(ctx)
}
