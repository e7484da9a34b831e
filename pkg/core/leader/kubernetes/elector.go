package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// ErrForbidden is wrapped by Prepare's error when this replica's credentials
// lack a verb the election needs.
var ErrForbidden = errors.New("kubernetes election: not allowed")

// Verbs lists what the elector does to its Lease, exactly: the Role in
// deploy/kubernetes grants these and nothing else on leases.
var Verbs = []string{"get", "create", "update"}

// Option configures an Elector.
type Option func(*Elector)

// WithLogger sets the logger for transitions; the default discards.
func WithLogger(l logr.Logger) Option { return func(e *Elector) { e.log = l } }

// WithObserver reports renew attempts to o (metrics).
func WithObserver(o leader.Observer) Option { return func(e *Elector) { e.observer = o } }

// WithClock replaces the local clock (tests inject skew).
func WithClock(c leader.Clock) Option { return func(e *Elector) { e.clock = c } }

// WithIdentity sets the holder identity; the default is leader.NewIdentity().
func WithIdentity(id string) Option { return func(e *Elector) { e.identity = id } }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Elector campaigns for one election on one Lease on behalf of one holder.
type Elector struct {
	client   kubernetes.Interface
	lease    lease
	epochs   *leader.Epochs
	cfg      Config
	identity string
	log      logr.Logger
	trouble  *leader.Trouble
	observer leader.Observer
	clock    leader.Clock

	mu       sync.Mutex
	observed leader.Record
	seenRV   string    // resourceVersion of the Lease as last read
	seenAt   time.Time // local instant seenRV was first read
}

var (
	_ leader.Elector       = (*Elector)(nil)
	_ leader.ForceReleaser = (*Elector)(nil)
)

// New validates cfg (after Defaulted) and returns the elector of cfg's Lease
// through client, minting terms with epochs. It does no I/O: Prepare checks
// the credentials and creates the epoch table. client should have no
// client-side rate limit (see Config.RESTConfig): client-go's default of 5
// requests/s delays renewals past their deadline.
func New(client kubernetes.Interface, epochs *leader.Epochs, cfg Config, opts ...Option) (*Elector, error) {
	if client == nil || epochs == nil {
		return nil, errors.New("kubernetes election: nil client or epochs")
	}
	cfg = cfg.Defaulted()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Elector{
		client: client,
		lease:  lease{api: client.CoordinationV1().Leases(cfg.Namespace), ns: cfg.Namespace, name: cfg.LeaseName, election: cfg.Election.Name},
		epochs: epochs, cfg: cfg, log: logr.Discard(), clock: realClock{},
	}
	for _, o := range opts {
		o(e)
	}
	if e.identity == "" {
		e.identity = leader.NewIdentity()
	}
	if err := validateHolder(e.identity); err != nil {
		return nil, err
	}
	e.log = e.log.WithValues("election", cfg.Election.Name, "lease", e.lease.ref(), "identity", e.identity)
	e.trouble = leader.NewTrouble(e.log)
	e.observed = e.lease.record(nil, time.Time{}, e.clock.Now())
	return e, nil
}

func validateHolder(holder string) error {
	if holder == "" || len(holder) > leader.MaxHolderLength || !utf8.ValidString(holder) || strings.TrimSpace(holder) != holder {
		return fmt.Errorf("%w: holder identity %q: must be 1..%d bytes of UTF-8 without surrounding white space",
			leader.ErrInvalidConfig, holder, leader.MaxHolderLength)
	}
	return nil
}

// Identity is the holder name this elector campaigns as.
func (e *Elector) Identity() string { return e.identity }

// Config returns the validated configuration.
func (e *Elector) Config() Config { return e.cfg }

// Prepare creates the epoch table in the store's database and asks the
// apiserver (SelfSubjectAccessReview) whether these credentials may do every
// verb of Verbs on the Lease; a missing one is an error wrapping
// ErrForbidden that names it, so a replica without its Role fails to start
// instead of campaigning forever.
func (e *Elector) Prepare(ctx context.Context) error {
	if err := e.epochs.Migrate(ctx); err != nil {
		return fmt.Errorf("kubernetes election: %w", err)
	}
	var missing []string
	for _, verb := range Verbs {
		attrs := &authorizationv1.ResourceAttributes{Namespace: e.cfg.Namespace, Verb: verb,
			Group: coordinationv1.GroupName, Resource: "leases", Name: e.cfg.LeaseName}
		if verb == "create" {
			attrs.Name = "" // RBAC cannot restrict create by name
		}
		// Bounded by ctx only: a start-up check, not a renewal racing a
		// deadline (OpTimeout is sized for those).
		r, err := e.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
			&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs}},
			metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("kubernetes election: check access to lease %s: %w", e.lease.ref(), err)
		}
		if !r.Status.Allowed {
			missing = append(missing, verb)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s on leases.coordination.k8s.io %q in namespace %q (grant %s; see deploy/kubernetes/rbac.yaml)",
			ErrForbidden, strings.Join(missing, ", "), e.cfg.LeaseName, e.cfg.Namespace, strings.Join(Verbs, ", "))
	}
	return nil
}

// Observed returns the Lease as this elector last read it, without I/O.
func (e *Elector) Observed() leader.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed
}

// Leader reads the Lease.
func (e *Elector) Leader(ctx context.Context) (leader.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Election.OpTimeout)
	defer cancel()
	obj, err := e.lease.get(ctx)
	if err != nil {
		return leader.Record{}, err
	}
	return e.observe(obj), nil
}

// observe records obj as read now: a new resourceVersion restarts the
// local count of how long the Lease has been left alone.
func (e *Elector) observe(obj *coordinationv1.Lease) leader.Record {
	now := e.clock.Now()
	rv := ""
	if obj != nil {
		rv = obj.ResourceVersion
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if rv != e.seenRV || e.seenAt.IsZero() {
		e.seenRV, e.seenAt = rv, now
	}
	e.observed = e.lease.record(obj, e.seenAt, now)
	return e.observed
}

// leftAlone is how long the Lease at obj's resourceVersion has gone
// unchanged as far as this replica knows (observe must have seen obj).
func (e *Elector) leftAlone(obj *coordinationv1.Lease) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if obj.ResourceVersion != e.seenRV {
		return 0
	}
	return e.clock.Now().Sub(e.seenAt)
}

// ForceRelease empties the Lease's holder whoever it is and returns the
// Lease as it was. The holder loses its term at its next renew (within
// RetryPeriod); until then the store's fencing stops its writes once the
// next leader has minted its term.
func (e *Elector) ForceRelease(ctx context.Context) (leader.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Election.OpTimeout)
	defer cancel()
	for {
		obj, err := e.lease.get(ctx)
		if err != nil {
			return leader.Record{}, err
		}
		before := e.observe(obj)
		if obj == nil || holderOf(obj) == "" {
			return before, nil
		}
		out, err := e.lease.release(ctx, obj)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return before, err
		}
		e.observe(out)
		e.log.Info("lease force-released", "holder", before.Holder, "term", before.Term)
		return before, nil
	}
}

// Campaign tries at once, then every RetryPeriod with jitter (sooner when
// the observed holder's lease duration runs out), until it takes the Lease
// and mints a term, or ctx ends. API and database errors are retried; only
// ctx ends a campaign early. The Leadership's context is derived from ctx.
func (e *Elector) Campaign(ctx context.Context) (leader.Leadership, error) {
	for {
		wait := e.jittered()
		obj, sent, err := e.tryAcquire(ctx)
		if err == nil {
			l, merr := e.lead(ctx, obj, sent)
			if merr == nil {
				e.trouble.Over()
				return l, nil
			}
			err = merr
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		var held *heldError
		switch {
		case errors.As(err, &held):
			e.trouble.Over()
			if held.left < wait {
				wait = held.left
			}
		case errors.Is(err, errConflict):
			// another candidate moved first: look again soon
		default:
			e.trouble.Fail(err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
}

type heldError struct {
	holder string
	left   time.Duration
}

func (h *heldError) Error() string {
	return fmt.Sprintf("%v by %s for at least %v more", ErrHeld, h.holder, h.left.Round(time.Millisecond))
}
func (h *heldError) Unwrap() error { return ErrHeld }

// tryAcquire reads the Lease and takes it when it is missing, free, this
// holder's, or left unchanged for its lease duration since this replica
// first saw its current resourceVersion. sent is the local instant the
// successful write was sent.
func (e *Elector) tryAcquire(ctx context.Context) (*coordinationv1.Lease, time.Time, error) {
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.Election.OpTimeout)
	defer cancel()
	cur, err := e.lease.get(opCtx)
	if err != nil {
		return nil, time.Time{}, err
	}
	e.observe(cur)
	if h := holderOf(cur); h != "" && h != e.identity {
		if left := durationOf(cur) - e.leftAlone(cur); left > 0 {
			return nil, time.Time{}, &heldError{holder: h, left: left + time.Millisecond}
		}
	}
	sent := e.clock.Now()
	out, err := e.lease.take(opCtx, cur, e.identity, e.cfg.Election.LeaseDuration)
	if err != nil {
		return nil, time.Time{}, err
	}
	e.observe(out)
	return out, sent, nil
}

func (e *Elector) jittered() time.Duration {
	return leader.Jittered(e.cfg.Election.RetryPeriod, e.cfg.Election.JitterFactor)
}

// LastError is the cause of the failing campaign attempts, "" while they work.
func (e *Elector) LastError() string { return e.trouble.Cause() }
