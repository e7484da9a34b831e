package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// runLeader is the leader runner: the state machine of the package doc, on
// one goroutine owned by the Runtime (Stop cancels stopCtx and waits for
// runnerDone). The elector's renew loop never runs any of this.
func (r *Runtime) runLeader() {
	defer close(r.runnerDone)
	reason := "started"
	var ended leader.Term // the last term, for the log lines after it
	for {
		r.transition(RoleCandidate, leader.Term{}, reason, ended)
		ls, release, err := r.campaign()
		if err != nil {
			if r.stopCtx.Err() != nil {
				break
			}
			r.log.Error(err, "campaign failed; retrying after backoff")
			if !r.sleep(r.opts.Backoff.Initial) {
				break
			}
			reason = "campaign failed"
			continue
		}
		ended = ls.Term()
		cause := r.lead(ls)
		if r.stopCtx.Err() != nil {
			r.resign(ls)
			release()
			break
		}
		release()
		if !r.reset(ended) {
			break
		}
		reason = cause.Error()
	}
	r.transition(RoleStopped, leader.Term{}, "runtime stopped", ended)
}

// campaign runs one Campaign that Stop interrupts while it is running, but
// that Stop does not cancel once it has won (the runner cancels the term
// itself, to keep renewing while the components drain). release frees the
// campaign context after the term is over.
func (r *Runtime) campaign() (Leadership, func(), error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	unwatch := context.AfterFunc(r.stopCtx, func() { cancel(ErrShutdown) })
	ls, err := r.elector.Campaign(ctx)
	unwatch()
	release := func() { cancel(context.Canceled) }
	if err == nil && ls == nil {
		err = errors.New("elector returned no leadership and no error")
	}
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("campaign: %w", err)
	}
	return ls, release, nil
}

// lead runs one term: Leading until the term ends or Stop, then Draining
// until every leader component returned. It returns why the term ended.
func (r *Runtime) lead(ls Leadership) error {
	term := ls.Term()
	ctx, cancel := context.WithCancelCause(leader.WithTerm(ls.Context(), term))
	defer cancel(nil)
	r.transition(RoleLeading, term, "elected", term)
	g := startGroup(ctx, r.restarters(true, cancel))

	var cause error
	select {
	case <-ctx.Done():
		cause = context.Cause(ctx)
	case <-r.stopCtx.Done():
		cause = ErrShutdown
	}
	r.transition(RoleDraining, term, cause.Error(), term)
	cancel(cause)
	r.drain(g, term)
	switch {
	case r.stopCtx.Err() != nil:
		// Stop: the caller resigns, releasing the lease last.
	case errors.Is(cause, ErrTermFenced):
		// The renew loop may not have noticed yet (or, if the row expired
		// by the database clock but is still ours, never would): end it, and
		// free the row if it is still ours.
		r.resign(ls)
	default:
		<-ls.Done() // the term was lost: its renew loop is ending on its own
	}
	return cause
}

// drain waits for the term's leader components. Past DrainTimeout it calls
// FailStop; if that returns, it waits on, because campaigning while a
// component of the old term runs would make two leaders.
func (r *Runtime) drain(g *group, term leader.Term) {
	stuck := g.wait(r.opts.DrainTimeout)
	if len(stuck) == 0 {
		return
	}
	r.opts.FailStop(fmt.Errorf("%w: %s still running %v after term %d of %s ended", ErrDrainTimeout,
		strings.Join(stuck, ", "), r.opts.DrainTimeout, term.Number, term.Holder))
	<-g.done
}

// resign releases the lease after the components have drained on shutdown.
func (r *Runtime) resign(ls Leadership) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
	defer cancel()
	if err := ls.Resign(ctx); err != nil {
		term := ls.Term()
		r.log.Error(err, "release lease on shutdown failed; a follower takes over when it expires", "holder", term.Holder, "term", term.Number)
	}
}

// reset calls the Resetter until it succeeds, with backoff. It reports false
// when Stop interrupted it.
func (r *Runtime) reset(term leader.Term) bool {
	if r.opts.Resetter == nil {
		return true
	}
	for failures := 0; ; failures++ {
		ctx, cancel := context.WithTimeout(r.stopCtx, r.opts.DrainTimeout)
		err := r.opts.Resetter.Reset(ctx)
		cancel()
		if err == nil {
			return true
		}
		if r.stopCtx.Err() != nil {
			return false
		}
		delay := r.opts.Backoff.Delay(failures)
		r.log.Error(err, "store reset after term failed; retrying before campaigning again", "holder", term.Holder, "term", term.Number, "backoff", delay)
		if !r.sleep(delay) {
			return false
		}
	}
}

// sleep waits d unless Stop comes first; it reports whether d passed.
func (r *Runtime) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stopCtx.Done():
		return false
	}
}

// transition records and logs one state change. logTerm is the term the
// line is about: the current one, or the one that just ended.
func (r *Runtime) transition(to Role, term leader.Term, reason string, logTerm leader.Term) {
	ch := r.book.setRole(to, term, reason)
	kv := []any{"from", ch.From, "to", ch.To, "reason", reason}
	if !logTerm.IsZero() {
		kv = append(kv, "holder", logTerm.Holder, "term", logTerm.Number)
	}
	r.log.Info("leader runner: "+string(to), kv...)
}
