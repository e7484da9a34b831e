package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-zookeeper/zk"

	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Scheme is the URL scheme Register uses.
const Scheme = "zookeeper"

// DefaultSessionTimeout is the session timeout asked of the servers.
const DefaultSessionTimeout = 10 * time.Second

// Roots of Dubbo's two registry layouts.
const (
	InterfaceRoot   = "/dubbo"
	ApplicationRoot = "/services"
)

// Config locates the ensemble.
type Config struct {
	// Servers are host:port addresses of the ensemble.
	Servers []string
	// SessionTimeout is asked of the servers; they may clamp it.
	SessionTimeout time.Duration
}

// ConfigFromURL reads zookeeper://host:port[,host:port...][?sessionTimeout=D].
func ConfigFromURL(u *url.URL) (Config, error) {
	cfg := Config{SessionTimeout: DefaultSessionTimeout}
	for _, s := range strings.Split(u.Host, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
	if len(cfg.Servers) == 0 {
		return cfg, fmt.Errorf("zookeeper source URL %q names no server", u.Redacted())
	}
	if v := u.Query().Get("sessionTimeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("zookeeper source URL: sessionTimeout %q is not a positive duration", v)
		}
		cfg.SessionTimeout = d
	}
	return cfg, nil
}

// Register adds the zookeeper scheme to reg.
func Register(reg source.Registry) {
	reg.Register(Scheme, func(ctx context.Context, u *url.URL, log logr.Logger) (source.Source, error) {
		cfg, err := ConfigFromURL(u)
		if err != nil {
			return nil, err
		}
		return Open(ctx, cfg, log)
	})
}

// registry is one term's connection to the ensemble.
type registry struct {
	conn   *zk.Conn
	events <-chan zk.Event
	log    logr.Logger

	// session is signalled (coalesced) on every session state change;
	// expired is set when the session expired.
	session chan struct{}
	expired atomic.Bool
	// fired is signalled (coalesced) when a watch event is queued in
	// firedQ, in the order the client received them.
	fired   chan struct{}
	firedMu sync.Mutex
	firedQ  []zk.Event

	sessionTimeout time.Duration

	done      chan struct{}
	stopOnce  sync.Once
	stopAfter func() bool
	wg        sync.WaitGroup
	mu        sync.Mutex
	err       error
	malformed map[string]bool
	// walked is the state the first walk read, for the first List: it is
	// as new as every watch, so List need not walk the tree again.
	walked []store.Resource
}

// Open connects to the ensemble (in the background: the first request
// waits for the connection) and closes the connection when ctx ends.
func Open(ctx context.Context, cfg Config, log logr.Logger) (source.Source, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("zookeeper source: no server")
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	r := &registry{
		log:            log.WithValues("servers", strings.Join(cfg.Servers, ",")),
		sessionTimeout: cfg.SessionTimeout,
		session:        make(chan struct{}, 1),
		fired:          make(chan struct{}, 1),
		done:           make(chan struct{}),
		malformed:      map[string]bool{},
	}
	conn, events, err := zk.Connect(cfg.Servers, cfg.SessionTimeout,
		zk.WithLogger(zkLogger{r.log}), zk.WithLogInfo(false), zk.WithEventCallback(r.onEvent))
	if err != nil {
		return nil, fmt.Errorf("zookeeper source: %w", err)
	}
	r.conn, r.events = conn, events
	r.stopAfter = context.AfterFunc(ctx, conn.Close)
	return r, nil
}

// onEvent runs on the client's goroutine and must not block.
func (r *registry) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		r.firedMu.Lock()
		r.firedQ = append(r.firedQ, ev)
		r.firedMu.Unlock()
		select {
		case r.fired <- struct{}{}:
		default:
		}
		return
	}
	if ev.State == zk.StateExpired {
		r.expired.Store(true)
	}
	select {
	case r.session <- struct{}{}:
	default:
	}
}

// takeFired returns the queued watch events and empties the queue.
func (r *registry) takeFired() []zk.Event {
	r.firedMu.Lock()
	defer r.firedMu.Unlock()
	evs := r.firedQ
	r.firedQ = nil
	return evs
}

// Watch waits for a session (at most the session timeout), sets every
// watch, then hands them to the goroutine that owns them.
func (r *registry) Watch(ctx context.Context) (<-chan source.Change, error) {
	out := make(chan source.Change)
	w := newWatcher(r, out)
	start := time.Now()
	if err := w.first(ctx, max(r.sessionTimeout, 5*time.Second)); err != nil {
		return nil, err // the forwarders of the watches set so far end with Stop
	}
	r.log.Info("walked the registry", "registrations", len(w.listed), "watches", len(w.watching), "took", time.Since(start).String())
	walked := make([]store.Resource, 0, len(w.listed))
	for _, res := range w.listed {
		walked = append(walked, res)
	}
	w.listed = nil
	r.mu.Lock()
	r.walked = walked
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(out)
		if err := w.run(ctx); err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
		}
	}()
	return out, nil
}

// List returns what the first walk read, the first time (nothing was
// reported since: the watcher starts after), then walks both layouts
// without watching.
func (r *registry) List(context.Context) ([]store.Resource, error) {
	r.mu.Lock()
	walked := r.walked
	r.walked = nil
	r.mu.Unlock()
	if walked != nil {
		return walked, nil
	}
	var out []store.Resource
	ifaces, err := r.children(InterfaceRoot)
	if err != nil {
		return nil, err
	}
	for _, iface := range ifaces {
		for cat := range categories {
			dir := path.Join(InterfaceRoot, iface, cat)
			names, err := r.children(dir)
			if err != nil {
				return nil, err
			}
			for _, name := range names {
				if res, ok := r.urlNode(dir, name); ok {
					out = append(out, res)
				}
			}
		}
	}
	apps, err := r.children(ApplicationRoot)
	if err != nil {
		return nil, err
	}
	for _, app := range apps {
		dir := path.Join(ApplicationRoot, app)
		ids, err := r.children(dir)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			p := path.Join(dir, id)
			data, _, err := r.conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("zookeeper source: get %s: %w", p, err)
			}
			if res, ok := r.instanceNode(p, data); ok {
				out = append(out, res)
			}
		}
	}
	return out, nil
}

// children lists a node's children; a missing node has none.
func (r *registry) children(p string) ([]string, error) {
	names, _, err := r.conn.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("zookeeper source: list %s: %w", p, err)
	}
	return names, nil
}

// urlNode maps /dubbo/<iface>/<category>/<name>; false when malformed.
func (r *registry) urlNode(dir, name string) (store.Resource, bool) {
	p := path.Join(dir, name)
	cat := path.Base(dir)
	iface := path.Base(path.Dir(dir))
	reg, err := parseURLNode(iface, cat, name)
	if err != nil {
		r.skip(p, err)
		return store.Resource{}, false
	}
	return r.resource(p, reg)
}

// instanceNode maps /services/<app>/<id>; false when malformed.
func (r *registry) instanceNode(p string, data []byte) (store.Resource, bool) {
	reg, err := parseInstanceNode(path.Base(path.Dir(p)), data)
	if err != nil {
		r.skip(p, err)
		return store.Resource{}, false
	}
	return r.resource(p, reg)
}

func (r *registry) resource(p string, reg discovery.Registration) (store.Resource, bool) {
	res, err := discovery.NewRegistration(p, reg)
	if err != nil {
		r.skip(p, err)
		return store.Resource{}, false
	}
	return res, true
}

// skip logs a malformed node once per term.
func (r *registry) skip(p string, err error) {
	r.mu.Lock()
	seen := r.malformed[p]
	r.malformed[p] = true
	r.mu.Unlock()
	if !seen {
		r.log.Info("skipping malformed registry node", "path", p, "error", err.Error())
	}
}

// Stop ends the watch goroutines and closes the connection, waiting for
// the client's own goroutines to finish.
func (r *registry) Stop() error {
	r.stopOnce.Do(func() {
		close(r.done)
		r.stopAfter()
		r.conn.Close()
		r.wg.Wait()
		for range r.events { // closed when the client's loop has returned
		}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// zkLogger sends the client's messages to logr at V(1).
type zkLogger struct{ log logr.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.V(1).Info(fmt.Sprintf(format, args...))
}
