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
	fencedStreak := 0     // terms in a row that ended because a write was fenced
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
		cause := r.runTerm(ls)
		if r.stopCtx.Err() != nil {
			r.resign(ls, leader.EndReleased)
			release()
			break
		}
		release()
		if !r.reset(ended) {
			break
		}
		reason = cause.Error()
		if !errors.Is(cause, ErrTermFenced) {
			fencedStreak = 0
			continue
		}
		// A term fenced at once, again and again, means every write is
		// refused (a store fenced against an election it does not belong
		// to): back off instead of spinning through terms.
		delay := r.opts.Backoff.Delay(fencedStreak)
		fencedStreak++
		r.log.Info("term ended by a fenced write; campaigning again after backoff", "holder", ended.Holder, "term", ended.Number, "fencedTermsInARow", fencedStreak, "backoff", delay)
		if !r.sleep(delay) {
			break
		}
	}
	r.transition(RoleStopped, leader.Term{}, "runtime stopped", ended)
}

// campaign runs one Campaign that Stop interrupts while it is running, but
// that Stop does not cancel once it has won (the runner cancels the term
// itself, to keep renewing while the components drain). release frees the
// campaign context after the term is over.
func (r *Runtime) campaign() (leader.Leadership, func(), error) {
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

// runTerm runs one term: Leading until the term ends or Stop, then Draining
// until every leader component returned. It returns why the term ended.
func (r *Runtime) runTerm(ls leader.Leadership) error {
	term := ls.Term()
	ctx, cancel := context.WithCancelCause(leader.WithTerm(ls.Context(), term))
	defer cancel(nil)
	r.setLeadership(ls)
	defer r.setLeadership(nil)
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
	drainStart := time.Now()
	r.drain(g, ls)
	// The instant the term's components stopped acting, before the lease
	// is released on a stop: fault suites end the term's interval here.
	r.log.Info(LogDrained, "holder", term.Holder, "term", term.Number, "drained", time.Since(drainStart))
	switch {
	case r.stopCtx.Err() != nil:
		// Stop: the caller resigns, releasing the lease last.
	case errors.Is(cause, ErrTermFenced):
		// The renew loop may not have noticed yet (or, if the row expired
		// by the database clock but is still ours, never would): end it, and
		// free the row if it is still ours.
		r.resign(ls, leader.EndFenced)
	default:
		// The term was lost: its backend goroutines are ending on their own.
		// A statement stuck in a driver must not hold the runner forever;
		// the old term's renewals can do no harm to the next one (they are
		// conditional on its term), so past DrainTimeout it moves on.
		t := time.NewTimer(r.opts.DrainTimeout)
		select {
		case <-ls.Done():
		case <-t.C:
			r.log.Info("the lost term's election goroutine has not returned; campaigning anyway", "holder", term.Holder, "term", term.Number, "waited", r.opts.DrainTimeout)
		}
		t.Stop()
	}
	return cause
}

// drain waits for the term's leader components, at most DrainTimeout and
// never past the term's ValidUntil once the term is lost: after that
// instant another replica may lead, so a component still running would be a
// second leader. Past the bound it calls FailStop; if that returns (tests),
// it waits on, because campaigning while a component of the old term runs
// would make two leaders too.
func (r *Runtime) drain(g *group, ls leader.Leadership) {
	term := ls.Term()
	start := time.Now()
	bound := time.NewTimer(r.opts.DrainTimeout)
	defer bound.Stop()
	lost := ls.Context().Done()
	var valid <-chan time.Time
	var reason string
	for valid == nil {
		select {
		case <-g.done:
			return
		case <-bound.C:
			r.failStop(g, term, time.Since(start), "the drain timeout")
			return
		case <-lost:
			// The lease is no longer renewed: the drain must end before
			// another replica can be elected.
			left, why := time.Until(ls.ValidUntil()), "the end of the lease as last renewed"
			if left <= 0 {
				// Noticed only after the lease could have expired: this
				// process was paused (SIGSTOP, a VM freeze), and a successor
				// may already lead. Exiting now would not undo that; give
				// the components a short grace to return.
				left, why = resumeGrace, "a short grace after a pause past the lease"
			}
			t := time.NewTimer(left)
			defer t.Stop()
			valid = t.C
			reason = why
		}
	}
	select {
	case <-g.done:
	case <-bound.C:
		r.failStop(g, term, time.Since(start), "the drain timeout")
	case <-valid:
		r.failStop(g, term, time.Since(start), reason)
	}
}

// LogDrained is the message of the line the runtime logs once every leader
// component of a term has returned.
const LogDrained = "leader runner: components drained"

// resumeGrace is how long leader components may take to return when their
// term's loss is noticed after its ValidUntil (the process was paused).
const resumeGrace = 500 * time.Millisecond

func (r *Runtime) failStop(g *group, term leader.Term, waited time.Duration, bound string) {
	stuck := g.wait(0)
	if len(stuck) == 0 {
		return
	}
	r.opts.FailStop(fmt.Errorf("%w: %s still running %v after term %d of %s ended (bound: %s)", ErrDrainTimeout,
		strings.Join(stuck, ", "), waited.Round(time.Millisecond), term.Number, term.Holder, bound))
	<-g.done
}

// resign releases the lease after the components have drained (on
// shutdown, or after a fenced write); how goes to the term log.
func (r *Runtime) resign(ls leader.Leadership, how string) {
	ctx, cancel := context.WithTimeout(leader.WithEndReason(context.Background(), how), r.opts.DrainTimeout)
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
