package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// The leader stream, /api/v1/leader?watch=true: server-sent events of
// LeaderInfo, so that a browser or a script follows leadership without
// polling. The first event is the lease as this replica reads it from the
// database; then one event each time what this replica knows changes: its
// own role (the runtime's role changes, at once) or the lease it observes
// (holder, term, held: checked every WatchInterval without I/O, since the
// elector reads the lease every retry period anyway). A comment line every
// WatchKeepalive keeps proxies from closing an idle stream. Every stream
// ends when the server shuts down.

// Default timings of the leader stream.
const (
	DefaultWatchInterval  = 50 * time.Millisecond
	DefaultWatchKeepalive = 15 * time.Second
)

// LeaderEvent is the SSE event name of a LeaderInfo on the stream.
const LeaderEvent = "leader"

// streams ends every leader stream at once: the HTTP server calls
// CloseStreams when it shuts down, since Shutdown waits for open handlers.
type streams struct {
	init, closed sync.Once
	done         chan struct{}
}

func (s *streams) ch() chan struct{} {
	s.init.Do(func() { s.done = make(chan struct{}) })
	return s.done
}

// CloseStreams ends every open leader stream and refuses new ones; the
// replica's HTTP server calls it when it starts to shut down.
func (a *API) CloseStreams() { a.streams.closed.Do(func() { close(a.streams.ch()) }) }

func (a *API) watchLeader(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "the server cannot stream")
		return
	}
	closing := a.streams.ch()
	select {
	case <-closing:
		writeError(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	default:
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var roles <-chan runtime.RoleChange
	if a.Subscribe != nil {
		roles = a.Subscribe(ctx)
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	info := a.leaderInfo(ctx)
	last := watchKey(info)
	if err := sendEvent(w, LeaderEvent, info); err != nil {
		return
	}
	flusher.Flush()
	tick := time.NewTicker(cmp.Or(a.WatchInterval, DefaultWatchInterval))
	defer tick.Stop()
	alive := time.NewTicker(cmp.Or(a.WatchKeepalive, DefaultWatchKeepalive))
	defer alive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-closing:
			return
		case _, ok := <-roles:
			if !ok {
				roles = nil // the runtime stopped; the lease may still change
			}
		case <-tick.C:
		case <-alive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			flusher.Flush()
			continue
		}
		info := a.leaseInfo(a.Lease.Observed())
		if k := watchKey(info); k != last {
			last = k
			if err := sendEvent(w, LeaderEvent, info); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

// leaderKey is what makes a LeaderInfo new on the stream.
type leaderKey struct {
	holder string
	term   int64
	held   bool
	role   runtime.Role
	self   int64
	// this replica's election error and the lease's warning: a replica
	// that cannot take part, or a lease no one will take, is news too.
	electionError, warning string
}

func watchKey(i LeaderInfo) leaderKey {
	return leaderKey{holder: i.Holder, term: i.Term, held: i.Held, role: i.Self.Role, self: i.Self.Term,
		electionError: i.Self.ElectionError, warning: i.Warning}
}

func sendEvent(w http.ResponseWriter, event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("leader stream: %w", err)
	}
	if _, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return fmt.Errorf("leader stream: %w", err)
	}
	return nil
}
