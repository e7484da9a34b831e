package store

import (
	"context"
	"sync"
)

// notifier fans committed changes out to in-process subscribers. It owns no
// goroutine: publishing never blocks (each subscription has a bounded
// buffer) and a subscription is unregistered by context.AfterFunc when its
// context ends.
type notifier struct {
	buffer int

	mu   sync.Mutex
	subs map[*subscription]struct{}
}

type subscription struct {
	ch   chan Event
	stop func() bool // unregisters the AfterFunc
}

func newNotifier(buffer int) *notifier {
	return &notifier{buffer: buffer, subs: map[*subscription]struct{}{}}
}

// subscribe returns a channel of the events published from now on. It is
// closed when ctx ends, when the subscriber falls more than the buffer
// behind, or on reset; in the last two cases while ctx is still live, which
// tells the reader to re-list and subscribe again.
func (n *notifier) subscribe(ctx context.Context) <-chan Event {
	s := &subscription{ch: make(chan Event, n.buffer)}
	if ctx.Err() != nil {
		close(s.ch)
		return s.ch
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// Registered under n.mu: should ctx end right away, the AfterFunc waits
	// for the lock and finds s in the map.
	s.stop = context.AfterFunc(ctx, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.endLocked(s)
	})
	n.subs[s] = struct{}{}
	return s.ch
}

// endLocked removes s and closes its channel once. n.mu is held.
func (n *notifier) endLocked(s *subscription) {
	if _, ok := n.subs[s]; !ok {
		return
	}
	delete(n.subs, s)
	close(s.ch)
}

// publish delivers events in order. A subscription whose buffer is full is
// ended rather than blocking the writer.
func (n *notifier) publish(events ...Event) {
	if len(events) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs {
		for _, e := range events {
			select {
			case s.ch <- e:
				continue
			default:
			}
			n.endLocked(s)
			s.stop()
			break
		}
	}
}

// publishFunc publishes the n events event(0), ..., event(n-1), built once
// and only when there is a subscriber.
func (n *notifier) publishFunc(count int, event func(i int) Event) {
	if count == 0 {
		return
	}
	n.mu.Lock()
	idle := len(n.subs) == 0
	n.mu.Unlock()
	if idle {
		return
	}
	events := make([]Event, count)
	for i := range events {
		events[i] = event(i)
	}
	n.publish(events...)
}

// reset ends every subscription, dropping the events they had not yet
// delivered.
func (n *notifier) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs {
		n.endLocked(s)
		s.stop()
	}
}
