// Package sourcetest helps test leader components that mirror a source into
// the store: it runs one term of a component the way the runtime does and
// reads a kind back from the store in a form gomega compares well.
package sourcetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

var terms atomic.Int64

// Term is one term of a running component.
type Term struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// StartTerm runs start on its own goroutine with a fresh term context (a
// new leader.Term number each call, for stores that do not check the lease),
// as the runtime does on winning.
func StartTerm(parent context.Context, start func(context.Context) error) *Term {
	return StartWithTerm(parent, leader.Term{Election: "sourcetest", Holder: "sourcetest", Number: terms.Add(1)}, start)
}

// StartWithTerm is StartTerm with a given term, e.g. one acquired from a
// real lease so that a GORM store fences the writes.
func StartWithTerm(parent context.Context, term leader.Term, start func(context.Context) error) *Term {
	ctx, cancel := context.WithCancel(leader.WithTerm(parent, term))
	t := &Term{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.err = start(ctx)
	}()
	return t
}

// Done is closed when start has returned.
func (t *Term) Done() <-chan struct{} { return t.done }

// Err is start's result; valid once Done is closed.
func (t *Term) Err() error {
	<-t.done
	return t.err
}

// Stop loses leadership: it cancels the term and waits for start to return.
func (t *Term) Stop() error {
	t.cancel()
	return t.Err()
}

// Specs returns kind's resources in st as key -> spec decoded into a
// generic value, so expectations can be written as plain maps.
func Specs(ctx context.Context, st store.ResourceStore, kind string) (map[string]any, error) {
	res, err := st.List(ctx, kind, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(res.Items))
	for _, r := range res.Items {
		var v any
		if err := json.Unmarshal(r.Spec, &v); err != nil {
			return nil, fmt.Errorf("%s %s: %w", kind, r.Key, err)
		}
		out[r.Key] = v
	}
	return out, nil
}

// Keys returns the keys of kind's resources in st, in key order.
func Keys(ctx context.Context, st store.ResourceStore, kind string) ([]string, error) {
	res, err := st.List(ctx, kind, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(res.Items))
	for _, r := range res.Items {
		keys = append(keys, r.Key)
	}
	return keys, nil
}
