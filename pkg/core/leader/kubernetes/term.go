package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// lead mints the term of the Lease just taken (sent is the local instant
// the taking write was sent), writes it onto the Lease (for Leader and
// `leader status`; the write is a renew), and only then starts the renew
// goroutine and hands the term out. When either step fails, or takes past
// the deadline, it releases the Lease so that another candidate can try,
// and returns the error.
func (e *Elector) lead(parent context.Context, obj *coordinationv1.Lease, sent time.Time) (*term, error) {
	ctx, cancel := context.WithCancelCause(parent)
	t := &term{
		e:        e,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		cur:      obj,
		renewed:  sent,
		deadline: sent.Add(e.cfg.Election.RenewDeadline),
	}
	mintCtx, cancelMint := context.WithTimeout(ctx, t.left())
	minted, err := e.epochs.Mint(mintCtx, e.cfg.Election.Name, e.identity, e.lease.token(obj.ResourceVersion))
	cancelMint()
	if err == nil {
		t.term = minted
		err = t.renewOnce()
	}
	if err != nil {
		err = fmt.Errorf("kubernetes election: won lease %s but could not start the term: %w", e.lease.ref(), err)
		cancel(err)
		if rerr := t.release(context.Background()); rerr != nil {
			e.log.V(1).Info("releasing the lease after a failed start failed", "error", rerr.Error())
		}
		return nil, err
	}
	t.termCtx = leader.WithTerm(ctx, minted)
	go t.renewLoop()
	e.log.Info("lease acquired", "holder", minted.Holder, "term", minted.Number, "resourceVersion", obj.ResourceVersion)
	return t, nil
}

// term is one Leadership of an Elector.
type term struct {
	e       *Elector
	ctx     context.Context // the renew loop's; termCtx carries the Term on top
	cancel  context.CancelCauseFunc
	done    chan struct{}
	termCtx context.Context

	mu       sync.Mutex
	term     leader.Term
	cur      *coordinationv1.Lease // as this holder last wrote it
	renewed  time.Time             // local send instant of the last successful write
	deadline time.Time             // renewed + RenewDeadline

	endMu    sync.Mutex // serialises releases
	released bool       // the Lease was released (or found taken): later Resigns do nothing
}

var _ leader.Leadership = (*term)(nil)

func (t *term) Term() leader.Term        { t.mu.Lock(); defer t.mu.Unlock(); return t.term }
func (t *term) Context() context.Context { return t.termCtx }
func (t *term) Done() <-chan struct{}    { return t.done }
func (t *term) LastRenewal() time.Time   { t.mu.Lock(); defer t.mu.Unlock(); return t.renewed }
func (t *term) left() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deadline.Sub(t.e.clock.Now())
}
func (t *term) lease() *coordinationv1.Lease { t.mu.Lock(); defer t.mu.Unlock(); return t.cur }
func (t *term) skewMargin() time.Duration {
	c := t.e.cfg.Election
	return (c.LeaseDuration - c.RenewDeadline) / 2
}
func (t *term) validUntil(at time.Time) time.Time {
	return at.Add(t.e.cfg.Election.LeaseDuration - t.skewMargin())
}

// ValidUntil is the last successful write's send instant plus LeaseDuration
// less half the gap to RenewDeadline: no follower can have counted a whole
// lease duration of an unchanged Lease before then (see the package doc).
func (t *term) ValidUntil() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.validUntil(t.renewed)
}

// Resign ends the term: it cancels the term context, waits for the renew
// goroutine, then empties the Lease's holder (conditional on the version
// this holder last wrote) so that a follower takes over at its next poll.
// It returns when that is done or ctx ends; after a failed release a later
// Resign tries again. A term already lost is not an error. Resign is
// idempotent.
func (t *term) Resign(ctx context.Context) error {
	return t.end(ctx, leader.ErrResigned)
}

func (t *term) end(ctx context.Context, cause error) error {
	t.cancel(cause)
	select {
	case <-t.done:
	case <-ctx.Done():
		return fmt.Errorf("resign: %w", context.Cause(ctx))
	}
	t.endMu.Lock()
	defer t.endMu.Unlock()
	if t.released {
		return nil
	}
	if err := t.release(ctx); err != nil {
		return err // a later Resign tries again
	}
	t.released = true
	return nil
}

// release ends the term in the store (Epochs.End), then empties the holder
// if the Lease is still as this holder wrote it,
// or names this holder in a version written by someone else (an annotation
// edit, say); a Lease held by another or deleted is left alone.
func (t *term) release(ctx context.Context) error {
	e := t.e
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Election.OpTimeout)
	defer cancel()
	if tm := t.Term(); !tm.IsZero() {
		// From here on the store refuses this term's writes (none should
		// come: the runtime resigns after its components returned).
		if err := e.epochs.End(ctx, tm); err != nil {
			e.log.V(1).Info("ending the term in the store failed; the next mint supersedes it", "term", tm.Number, "error", err.Error())
		}
	}
	cur := t.lease()
	for {
		out, err := e.lease.release(ctx, cur)
		if err == nil {
			e.observe(out)
			tm := t.Term()
			e.log.Info("lease released", "holder", e.identity, "term", tm.Number)
			return nil
		}
		if !errors.Is(err, errConflict) {
			return fmt.Errorf("resign term %d: %w", t.Term().Number, err)
		}
		if cur, err = e.lease.get(ctx); err != nil {
			return fmt.Errorf("resign term %d: %w", t.Term().Number, err)
		}
		e.observe(cur)
		if cur == nil || holderOf(cur) != e.identity {
			return nil
		}
	}
}

// renewLoop renews every RetryPeriod. A watchdog cancels the term at the
// deadline, RenewDeadline after the send of the last successful write,
// whatever the loop is doing.
func (t *term) renewLoop() {
	defer close(t.done)
	e := t.e
	watchdog := time.AfterFunc(t.left(), func() { t.cancel(leader.ErrDeadlinePassed) })
	defer watchdog.Stop()
	tick := time.NewTicker(e.cfg.Election.RetryPeriod)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-t.ctx.Done():
			t.logEnd(context.Cause(t.ctx))
			return
		case <-tick.C:
		}
		err := t.renewOnce()
		switch {
		case err == nil:
			if !watchdog.Stop() {
				continue // the deadline passed while the write ran: the term is over
			}
			watchdog.Reset(t.left())
			if failures > 0 {
				e.log.Info("lease renewed late", "holder", e.identity, "term", t.Term().Number, "failedAttempts", failures)
				failures = 0
			}
		case errors.Is(err, errLost), errors.Is(err, leader.ErrDeadlinePassed):
			t.cancel(err)
		default:
			failures++
			e.log.V(1).Info("renew failed", "holder", e.identity, "term", t.Term().Number, "error", err.Error())
		}
	}
}

// renewOnce writes the next version of the Lease, within the time left
// before the deadline; on success the deadline moves to RenewDeadline after
// this write's send.
func (t *term) renewOnce() error {
	e := t.e
	left := t.left()
	if left <= 0 {
		return leader.ErrDeadlinePassed
	}
	sent := e.clock.Now()
	out, err := t.renew(min(left, e.cfg.Election.OpTimeout))
	if e.observer != nil {
		e.observer.ObserveRenew(e.clock.Now().Sub(sent), err)
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.cur, t.renewed, t.deadline = out, sent, sent.Add(e.cfg.Election.RenewDeadline)
	t.mu.Unlock()
	e.observe(out)
	return nil
}

var errLost = fmt.Errorf("%w: the Lease names another holder or is gone", leader.ErrLeaseLost)

// renew writes the next version of the Lease. On a conflict it reads the
// Lease: if it still names this holder (someone else edited it), it adopts
// that version and the next tick renews it; otherwise the term is lost.
func (t *term) renew(timeout time.Duration) (*coordinationv1.Lease, error) {
	e := t.e
	ctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	out, err := e.lease.renew(ctx, t.lease(), t.Term())
	if !errors.Is(err, errConflict) {
		return out, err
	}
	cur, gerr := e.lease.get(ctx)
	if gerr != nil {
		return nil, errors.Join(err, gerr)
	}
	e.observe(cur)
	if cur == nil || holderOf(cur) != e.identity {
		return nil, fmt.Errorf("%w (%w)", errLost, err)
	}
	t.mu.Lock()
	t.cur = cur
	t.mu.Unlock()
	return nil, err
}

func (t *term) logEnd(cause error) {
	if errors.Is(cause, leader.ErrResigned) {
		return // Resign logs the release
	}
	t.e.log.Info("lease lost", "holder", t.e.identity, "term", t.Term().Number, "reason", cause.Error())
}
