package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Annotations Admin keeps on its Lease, for `kubectl get lease -o yaml` and
// `leader status`. Decisions never read them.
const (
	// ElectionAnnotation is the election name (which need not be an object
	// name).
	ElectionAnnotation = "dubbo.apache.org/election"
	// TermAnnotation is the holder's term as minted in the store's database.
	TermAnnotation = "dubbo.apache.org/term"
)

// Backend is leader.Record.Backend of this package's records.
const Backend = "kubernetes"

// Why a write to the Lease did not happen.
var (
	// ErrHeld: another holder's Lease has not been left alone for its lease
	// duration yet, as observed by this replica.
	ErrHeld = errors.New("lease held")
	// errConflict: the Lease changed since it was read (HTTP 409).
	errConflict = errors.New("lease changed since it was read")
)

// lease is the Lease API of one election: reads, and writes conditional on
// the resourceVersion they were decided on (the apiserver's optimistic
// concurrency: an Update whose resourceVersion is not the stored one fails
// with a conflict, so two candidates can never both take the same version).
type lease struct {
	api      coordclient.LeaseInterface
	ns, name string
	election string
}

func (l *lease) ref() string { return l.ns + "/" + l.name }

// token is the backend's own record of a write, kept with the minted term.
func (l *lease) token(rv string) string {
	return "lease " + l.ref() + " resourceVersion " + rv
}

// get reads the Lease; nil without error when it does not exist.
func (l *lease) get(ctx context.Context) (*coordinationv1.Lease, error) {
	obj, err := l.api.Get(ctx, l.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get lease %s: %w", l.ref(), err)
	}
	return obj, nil
}

// take writes holder into the Lease cur was read from (or creates it when cur
// is nil), conditional on cur's resourceVersion. Its times are informational
// (the holder's wall clock, for kubectl); no replica compares them.
func (l *lease) take(ctx context.Context, cur *coordinationv1.Lease, holder string, d time.Duration) (*coordinationv1.Lease, error) {
	now := metav1.NewMicroTime(time.Now())
	secs := int32(d / time.Second)
	if cur == nil {
		zero := int32(0)
		obj := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: l.ns, Annotations: map[string]string{ElectionAnnotation: l.election}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs,
				AcquireTime: &now, RenewTime: &now, LeaseTransitions: &zero},
		}
		out, err := l.api.Create(ctx, obj, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create lease %s: %w", l.ref(), errConflict)
		}
		if err != nil {
			return nil, fmt.Errorf("create lease %s: %w", l.ref(), err)
		}
		return out, nil
	}
	next := cur.DeepCopy()
	transitions := int32(0)
	if cur.Spec.LeaseTransitions != nil {
		transitions = *cur.Spec.LeaseTransitions
	}
	if holderOf(cur) != holder {
		transitions++
	}
	next.Spec = coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs,
		AcquireTime: &now, RenewTime: &now, LeaseTransitions: &transitions}
	setAnnotation(next, ElectionAnnotation, l.election)
	delete(next.Annotations, TermAnnotation)
	return l.update(ctx, next)
}

// renew writes a new renewTime (and the term annotation) into the Lease at
// resourceVersion rv, which must still name holder.
func (l *lease) renew(ctx context.Context, cur *coordinationv1.Lease, term leader.Term) (*coordinationv1.Lease, error) {
	next := cur.DeepCopy()
	now := metav1.NewMicroTime(time.Now())
	next.Spec.RenewTime = &now
	if term.Number > 0 {
		setAnnotation(next, TermAnnotation, strconv.FormatInt(term.Number, 10))
	}
	return l.update(ctx, next)
}

// release empties the holder of the Lease cur was read from, conditional on
// its resourceVersion; a free Lease can be taken at once.
func (l *lease) release(ctx context.Context, cur *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	next := cur.DeepCopy()
	empty := ""
	now := metav1.NewMicroTime(time.Now())
	next.Spec.HolderIdentity = &empty
	next.Spec.RenewTime = &now
	return l.update(ctx, next)
}

func (l *lease) update(ctx context.Context, next *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	out, err := l.api.Update(ctx, next, metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return nil, fmt.Errorf("update lease %s at resourceVersion %s: %w", l.ref(), next.ResourceVersion, errConflict)
	case err != nil:
		return nil, fmt.Errorf("update lease %s: %w", l.ref(), err)
	}
	return out, nil
}

func setAnnotation(obj *coordinationv1.Lease, k, v string) {
	if obj.Annotations == nil {
		obj.Annotations = map[string]string{}
	}
	obj.Annotations[k] = v
}

func holderOf(obj *coordinationv1.Lease) string {
	if obj == nil || obj.Spec.HolderIdentity == nil {
		return ""
	}
	return *obj.Spec.HolderIdentity
}

// durationOf is the lease duration the holder wrote; at least one second.
func durationOf(obj *coordinationv1.Lease) time.Duration {
	if obj == nil || obj.Spec.LeaseDurationSeconds == nil || *obj.Spec.LeaseDurationSeconds < 1 {
		return time.Second
	}
	return time.Duration(*obj.Spec.LeaseDurationSeconds) * time.Second
}

// record describes obj as this replica sees it: firstSeen is the local
// instant it first read obj's resourceVersion, and ExpiresAt is firstSeen
// plus the lease duration, so Held and Remaining compare local times only
// (exactly the rule by which this replica would take the Lease over).
func (l *lease) record(obj *coordinationv1.Lease, firstSeen, now time.Time) leader.Record {
	r := leader.Record{Election: l.election, Now: now.Round(0), Backend: Backend}
	if obj == nil {
		return r
	}
	r.Holder = holderOf(obj)
	r.Token = l.token(obj.ResourceVersion)
	if t, err := strconv.ParseInt(obj.Annotations[TermAnnotation], 10, 64); err == nil {
		r.Term = t
	}
	if obj.Spec.AcquireTime != nil {
		r.AcquiredAt = obj.Spec.AcquireTime.UTC()
	}
	if obj.Spec.RenewTime != nil {
		r.RenewedAt = obj.Spec.RenewTime.UTC()
	}
	if obj.Spec.LeaseTransitions != nil {
		r.Transitions = int64(*obj.Spec.LeaseTransitions)
	}
	if r.Holder != "" {
		r.ExpiresAt = firstSeen.Round(0).Add(durationOf(obj))
	}
	return r
}
