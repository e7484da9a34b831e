package runtime

import (
	"context"
	"slices"
	"sync"
	"time"
)

// group owns the goroutines of one set of components started together: the
// non-leader components for the runtime's life, or the leader components for
// one term. Whoever starts a group cancels its context and waits for it.
type group struct {
	mu     sync.Mutex
	active map[string]bool
	done   chan struct{} // closed when every goroutine has returned
}

// startGroup runs each restarter on its own goroutine with ctx.
func startGroup(ctx context.Context, rs []restarter) *group {
	g := &group{active: make(map[string]bool, len(rs)), done: make(chan struct{})}
	if len(rs) == 0 {
		close(g.done)
		return g
	}
	for _, r := range rs {
		g.active[r.c.Name()] = true
	}
	for _, r := range rs {
		go func() {
			defer g.exit(r.c.Name())
			r.run(ctx)
		}()
	}
	return g
}

func (g *group) exit(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.active, name)
	if len(g.active) == 0 {
		close(g.done)
	}
}

// wait blocks until every goroutine returned or timeout passed, and returns
// the names of the components still running, sorted (nil when all returned).
func (g *group) wait(timeout time.Duration) []string {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.done:
		return nil
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var names []string
	for n := range g.active {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// waitCtx blocks until every goroutine returned or ctx ends.
func (g *group) waitCtx(ctx context.Context) error {
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
