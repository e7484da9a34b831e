package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// term is one won election: the Leadership. One goroutine (run) keeps the
// lease alive, watches the leader key and ends the term; a watchdog timer
// cancels the term context when no keep-alive succeeded in time.
type term struct {
	e          *Elector
	c          *clientv3.Client
	s          *concurrency.Session
	endSession context.CancelFunc
	lease      clientv3.LeaseID
	key        string
	rev        int64
	t          leader.Term
	parent     context.Context
	ctx        context.Context
	cancel     context.CancelCauseFunc
	done       chan struct{}

	mu   sync.Mutex
	sent time.Time // local send instant of the last acknowledged keep-alive

	relMu    sync.Mutex
	released bool
	resigned atomic.Bool // logged
}

var _ leader.Leadership = (*term)(nil)

func (e *Elector) lead(parent context.Context, c *clientv3.Client, s *concurrency.Session, endSession context.CancelFunc,
	lease clientv3.LeaseID, key string, rev int64, t leader.Term, sent time.Time) *term {
	ctx, cancel := context.WithCancelCause(leader.WithTerm(parent, t))
	l := &term{e: e, c: c, s: s, endSession: endSession, lease: lease, key: key, rev: rev, t: t,
		parent: parent, ctx: ctx, cancel: cancel, done: make(chan struct{}), sent: sent}
	// The watch starts at the revision after the key's creation: a deletion
	// in between is seen too.
	watch := c.Watch(clientv3.WithRequireLeader(ctx), key, clientv3.WithRev(rev+1))
	go l.run(watch)
	return l
}

func (l *term) Term() leader.Term                 { return l.t }
func (l *term) Context() context.Context          { return l.ctx }
func (l *term) Done() <-chan struct{}             { return l.done }
func (l *term) LastRenewal() time.Time            { l.mu.Lock(); defer l.mu.Unlock(); return l.sent }
func (l *term) ValidUntil() time.Time             { return l.LastRenewal().Add(l.e.validFor()) }
func (l *term) deadline(sent time.Time) time.Time { return sent.Add(l.e.renewDeadline()) }

// run is the term's goroutine. It returns once the term context ended,
// after stopping the session and, unless the campaign's context ended (a
// crash, as far as etcd is concerned), revoking the lease so the next
// candidate wins at once.
func (l *term) run(watch clientv3.WatchChan) {
	defer close(l.done)
	watchdog := time.AfterFunc(time.Until(l.deadline(l.LastRenewal())), func() {
		l.cancel(fmt.Errorf("%w: no etcd keep-alive acknowledged within %v of the last one sent", leader.ErrDeadlinePassed, l.e.renewDeadline()))
	})
	defer watchdog.Stop()
	tick := time.NewTicker(l.e.keepAliveEvery())
	defer tick.Stop()
	failures := 0
	for l.ctx.Err() == nil {
		select {
		case <-l.ctx.Done():
		case <-l.s.Done():
			l.cancel(fmt.Errorf("%w: etcd session ended", leader.ErrLeaseLost))
		case wr, ok := <-watch:
			switch {
			case !ok || wr.Err() != nil:
				l.cancel(fmt.Errorf("%w: watch of the leader key ended: %v", leader.ErrLeaseLost, wr.Err()))
			case deleted(wr):
				l.cancel(fmt.Errorf("%w: leader key %s deleted", leader.ErrLeaseLost, l.key))
			}
		case <-tick.C:
			left := time.Until(l.deadline(l.LastRenewal()))
			if left <= 0 {
				continue // the watchdog ends the term
			}
			sent := time.Now()
			err := l.e.keepAlive(l.ctx, l.c, l.lease, min(left, l.e.cfg.OpTimeout))
			if o := l.e.observer; o != nil && l.ctx.Err() == nil {
				o.ObserveRenew(time.Since(sent), err)
			}
			switch {
			case err == nil:
				if !watchdog.Stop() {
					continue // the deadline passed while the keep-alive was in flight
				}
				l.mu.Lock()
				l.sent = sent
				l.mu.Unlock()
				watchdog.Reset(time.Until(l.deadline(sent)))
				if failures > 0 {
					l.e.log.Info("etcd keep-alive acknowledged again", "term", l.t.Number, "failedAttempts", failures)
					failures = 0
				}
			case errors.Is(err, leader.ErrLeaseLost):
				l.cancel(err)
			case l.ctx.Err() == nil:
				failures++
				l.e.log.V(1).Info("etcd keep-alive failed", "term", l.t.Number, "error", err.Error())
			}
		}
	}
	l.endSession()
	<-l.s.Done()
	cause := context.Cause(l.ctx)
	if l.parent.Err() != nil && !errors.Is(cause, leader.ErrResigned) {
		l.e.log.Info("leadership ended with the campaign's context; the lease expires by itself", "term", l.t.Number)
		return
	}
	err := l.release(context.Background())
	if errors.Is(cause, leader.ErrResigned) {
		return // Resign ends the term in the epoch, with its context's reason, and logs
	}
	how := leader.EndLost
	if errors.Is(cause, leader.ErrDeadlinePassed) {
		how = leader.EndDeadline
	}
	endErr := l.end(leader.WithEndReason(context.Background(), how))
	l.e.log.Info("leadership lost", "term", l.t.Number, "reason", cause.Error(), "released", err == nil, "ended", endErr == nil)
}

func deleted(wr clientv3.WatchResponse) bool {
	for _, ev := range wr.Events {
		if ev.Type == mvccpb.DELETE {
			return true
		}
	}
	return false
}

// release revokes the session lease (which deletes the leader key) once,
// bounded by ctx and OpTimeout.
func (l *term) release(ctx context.Context) error {
	l.relMu.Lock()
	defer l.relMu.Unlock()
	if l.released {
		return nil
	}
	if err := l.e.revoke(ctx, l.c, l.lease); err != nil {
		return err
	}
	l.released = true
	return nil
}

// Resign ends the term: it cancels the term context and waits for the term's
// goroutine, which revokes the session lease (deleting the leader key) so the
// next candidate wins at once. It returns when that is done or ctx ends,
// whichever is first; the revoke is bounded by OpTimeout. A term already
// lost is not an error; Resign is idempotent.
func (l *term) Resign(ctx context.Context) error {
	l.cancel(leader.ErrResigned)
	select {
	case <-l.done:
	case <-ctx.Done():
		return fmt.Errorf("resign term %d: %w", l.t.Number, context.Cause(ctx))
	}
	// The goroutine revoked already, unless the campaign's context ended
	// first or its revoke failed: then try again here. Then the term ends in
	// the epoch, so that its fenced writes fail from now on.
	err := l.release(ctx)
	if err == nil {
		err = l.end(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("resign term %d: %w", l.t.Number, err)
	}
	if l.resigned.CompareAndSwap(false, true) {
		l.e.log.Info("leadership resigned", "term", l.t.Number)
	}
	return nil
}

// end marks the term over in the epoch (leader.Epochs.End, with ctx's end
// reason), bounded by OpTimeout; a term already ended or succeeded is left
// alone there.
func (l *term) end(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.e.cfg.OpTimeout)
	defer cancel()
	return l.e.epochs.End(ctx, l.t)
}
