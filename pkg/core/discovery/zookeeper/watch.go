package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// watcher owns the watches of one term. Only run's goroutine touches its
// fields (the registry queues the fired watches).
type watcher struct {
	r   *registry
	out chan<- source.Change

	// watching holds the paths with a pending watch.
	watching map[string]bool
	// known holds a digest (seed) of the registration last reported, by
	// node path: what a re-read is compared with, at 24 bytes a node
	// rather than the registration itself. A URL leaf's registration is
	// a function of its path, so a known leaf is not parsed again.
	known map[string]uint64
	seed  maphash.Seed
	// listed holds the registrations the first walk read, for the first
	// List (nil once Watch handed them over).
	listed map[string]store.Resource
	// below indexes known by directory: below[dir] holds the names of
	// dir's children that are, or lead to, a known registration. A
	// directory's re-sync visits its own subtree only, never all of known.
	below map[string]map[string]struct{}
	// rewalk is set when watches may be lost (expired session, failed
	// request): the tree is walked again once a session is held.
	rewalk bool
	// waitSession holds a rewalk after a failed request until the client
	// reports a session state change, so a broken connection is not
	// hammered.
	waitSession bool
	// silent is set during the first walk, which records the baseline the
	// later changes are diffed against without reporting it (List does).
	silent bool
	// ahead holds reads (and their watches) made in parallel before the
	// walk gets to them, by path; sync consumes them in its own order.
	ahead map[string]read
}

// read is one ChildrenW or GetW of a node.
type read struct {
	names []string
	data  []byte
	ch    <-chan zk.Event
	err   error
}

// aheadWorkers bounds the requests readAhead keeps in flight.
const aheadWorkers = 32

// errStopping: the term is over; run returns without an error.
var errStopping = errors.New("stopping")

func newWatcher(r *registry, out chan<- source.Change) *watcher {
	return &watcher{r: r, out: out, watching: map[string]bool{}, known: map[string]uint64{}, seed: maphash.MakeSeed(),
		listed: map[string]store.Resource{}, below: map[string]map[string]struct{}{}, ahead: map[string]read{}}
}

// first waits (bounded) for a session and walks the tree once, silently,
// setting every watch: from its return every change is reported.
func (w *watcher) first(ctx context.Context, wait time.Duration) error {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for w.r.conn.State() != zk.StateHasSession {
		select {
		case <-w.r.session:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			return fmt.Errorf("zookeeper source: no session within %s (state %s)", wait, w.r.conn.State())
		}
	}
	w.silent = true
	defer func() { w.silent = false }()
	if err := w.walk(ctx); err != nil {
		return err
	}
	if w.rewalk {
		return errors.New("zookeeper source: connection lost during the first walk of the registry")
	}
	return nil
}

func (w *watcher) run(ctx context.Context) error {
	for {
		if w.rewalk && !w.waitSession && w.r.conn.State() == zk.StateHasSession {
			if err := w.walk(ctx); err != nil {
				return stopped(err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.r.done:
			return nil
		case <-w.r.session:
			w.waitSession = false
			if w.r.expired.Swap(false) {
				w.r.log.Info("session expired; walking the registry again once reconnected")
				w.rewalk = true
			}
		case <-w.r.fired:
			for evs := w.r.takeFired(); len(evs) > 0; evs = evs[min(len(evs), maxFired):] {
				if err := w.resync(ctx, w.firedPaths(evs[:min(len(evs), maxFired)])); err != nil {
					return stopped(err)
				}
			}
		}
	}
}

// maxFired bounds how many fired watches are re-read together.
const maxFired = 256

// firedPaths returns the watched paths of evs, in the order they fired. A
// path not watched (a watch of an earlier walk, a read ahead that was not
// used) is left out: its current watch, if any, reports it.
func (w *watcher) firedPaths(evs []zk.Event) []string {
	var paths []string
	for _, ev := range evs {
		switch {
		case ev.Type == zk.EventNotWatching:
			w.rewalk = true
		case w.watching[ev.Path]:
			delete(w.watching, ev.Path)
			paths = append(paths, ev.Path)
		}
	}
	return paths
}

// resync syncs each path, their reads made in parallel first: under churn
// many directories change at once, and each would otherwise wait for its
// own round trip.
func (w *watcher) resync(ctx context.Context, paths []string) error {
	if len(paths) > 1 {
		var dirs, nodes []string
		for _, p := range paths {
			switch depth, root := strings.Count(p, "/"), "/"+strings.Split(p, "/")[1]; {
			case root == ApplicationRoot && depth == 3:
				nodes = append(nodes, p)
			case root == InterfaceRoot && depth == 3 && categories[path.Base(p)] == "", depth == 1:
				// not read (configurators), or a root (sync reads ahead below it)
			default:
				dirs = append(dirs, p)
			}
		}
		w.readAll(ctx, dirs, false)
		w.readAll(ctx, nodes, true)
		defer clear(w.ahead)
	}
	for _, p := range paths {
		if err := w.sync(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func stopped(err error) error {
	if errors.Is(err, errStopping) {
		return nil
	}
	return err
}

// walk sets every watch anew and reports what changed since the last walk.
func (w *watcher) walk(ctx context.Context) error {
	w.watching = map[string]bool{}
	w.rewalk = false
	for _, root := range []string{InterfaceRoot, ApplicationRoot} {
		if err := w.sync(ctx, root); err != nil {
			return err
		}
	}
	return nil
}

// sync re-reads one node, sets its watch, reports the difference and
// descends into children that are not watched yet.
func (w *watcher) sync(ctx context.Context, p string) error {
	if ctx.Err() != nil {
		// The term is over: what was read ahead is not parsed. A walk
		// sends nothing until it is done, so without this a large
		// registry's first walk would hold the term past its end.
		return errStopping
	}
	if w.rewalk {
		return nil // a walk will cover it
	}
	depth := strings.Count(p, "/")
	root := "/" + strings.Split(p, "/")[1]
	switch {
	case root == ApplicationRoot && depth == 3:
		return w.syncInstance(ctx, p)
	case root == InterfaceRoot && depth == 3 && categories[path.Base(p)] == "":
		return nil // configurators, routers: not registrations
	}
	names, err := w.childrenW(ctx, p, depth == 1)
	if err != nil || names == nil {
		return err
	}
	if err := w.dropMissing(ctx, p, names); err != nil {
		return err
	}
	if depth == 1 {
		w.readAhead(ctx, p, names)
		defer clear(w.ahead) // what the walk did not use is not reused later
	}
	for _, name := range names {
		child := path.Join(p, name)
		switch {
		case root == InterfaceRoot && depth == 3: // URL leaves
			if _, ok := w.known[child]; ok {
				continue // the same path is the same registration
			}
			if res, ok := w.r.urlNode(p, name); ok {
				if err := w.report(ctx, res); err != nil {
					return err
				}
			}
		case w.watching[child]:
			// Its own watch reports its changes.
		default:
			if err := w.sync(ctx, child); err != nil {
				return err
			}
		}
	}
	return nil
}

// childrenW lists p and watches it. A missing node has its registrations
// dropped; a missing root is watched for its creation. nil names and a nil
// error mean there is nothing to descend into.
func (w *watcher) childrenW(ctx context.Context, p string, isRoot bool) ([]string, error) {
	for {
		rd := w.readW(p, false)
		names, ch, err := rd.names, rd.ch, rd.err
		switch {
		case err == nil:
			w.watch(p, ch)
			if names == nil {
				names = []string{}
			}
			return names, nil
		case !errors.Is(err, zk.ErrNoNode):
			return nil, w.failed(p, err)
		}
		if err := w.dropPrefix(ctx, p); err != nil {
			return nil, err
		}
		if !isRoot {
			return nil, nil // the parent's watch reports its return
		}
		exists, _, ch, err := w.r.conn.ExistsW(p)
		if err != nil {
			return nil, w.failed(p, err)
		}
		if !exists {
			w.watch(p, ch)
			return nil, nil
		}
		// Created in between: list it. The exists watch is left to the
		// client (its channel is buffered), with no goroutine on it.
	}
}

// syncInstance re-reads and watches the data of /services/<app>/<id>.
func (w *watcher) syncInstance(ctx context.Context, p string) error {
	rd := w.readW(p, true)
	data, ch, err := rd.data, rd.ch, rd.err
	switch {
	case err == nil:
		w.watch(p, ch)
		if res, ok := w.r.instanceNode(p, data); ok {
			return w.report(ctx, res)
		}
		return w.forget(ctx, p)
	case errors.Is(err, zk.ErrNoNode):
		return w.forget(ctx, p)
	default:
		return w.failed(p, err)
	}
}

// readAhead reads, in parallel, what sync of root's children names will
// read: each child not watched yet, then the registrations' directories
// below it (interface level) or the instances' data (application level).
// A walk of a large registry thus waits for ZooKeeper's round trips
// aheadWorkers at a time instead of one by one. Reads nobody consumes
// (the tree changed in between) leave only a client-side watch behind.
func (w *watcher) readAhead(ctx context.Context, root string, names []string) {
	var level []string
	for _, name := range names {
		if child := path.Join(root, name); !w.watching[child] {
			level = append(level, child)
		}
	}
	w.readAll(ctx, level, false)
	var next []string
	for _, dir := range level {
		for _, name := range w.ahead[dir].names {
			if root == ApplicationRoot || categories[name] != "" {
				next = append(next, path.Join(dir, name))
			}
		}
	}
	w.readAll(ctx, next, root == ApplicationRoot)
}

// readAll reads every path (GetW if data, else ChildrenW) on aheadWorkers
// goroutines, which have returned when it returns, into w.ahead. Once ctx
// ends it reads no more: sync does not consume reads after the term.
func (w *watcher) readAll(ctx context.Context, paths []string, data bool) {
	if len(paths) == 0 {
		return
	}
	reads := make([]read, len(paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(aheadWorkers, len(paths)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(paths) && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				reads[i] = w.r.readW(paths[i], data)
			}
		})
	}
	wg.Wait()
	for i, p := range paths {
		w.ahead[p] = reads[i]
	}
}

// readW takes p's read from those made ahead, or reads it now.
func (w *watcher) readW(p string, data bool) read {
	if rd, ok := w.ahead[p]; ok {
		delete(w.ahead, p)
		return rd
	}
	return w.r.readW(p, data)
}

// readW reads p's data (GetW) or children (ChildrenW), with a watch.
func (r *registry) readW(p string, data bool) read {
	var rd read
	if data {
		rd.data, _, rd.ch, rd.err = r.conn.GetW(p)
	} else {
		rd.names, _, rd.ch, rd.err = r.conn.ChildrenW(p)
	}
	return rd
}

// failed decides what a failed request means: the end of the term, a
// broken connection (walk again once reconnected), or a node to skip.
func (w *watcher) failed(p string, err error) error {
	switch {
	case errors.Is(err, zk.ErrClosing):
		return errStopping
	case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrSessionExpired),
		errors.Is(err, zk.ErrNoServer), errors.Is(err, zk.ErrSessionMoved):
		if !w.rewalk {
			w.r.log.Info("registry request failed; walking again once reconnected", "path", p, "error", err.Error())
		}
		w.rewalk, w.waitSession = true, true
		return nil
	default:
		w.r.log.Info("skipping registry node", "path", p, "error", err.Error())
		return nil
	}
}

// watch records that p has a pending watch. Its event comes through the
// client's event callback (registry.onEvent), not through ch: no goroutine
// waits on each watch.
func (w *watcher) watch(p string, _ <-chan zk.Event) {
	w.watching[p] = true
}

// report sends res unless it is what was last reported for its path. Two
// different registrations of one path with the same digest (odds 2⁻⁶⁴ per
// change) would leave the change unreported until the next relist.
func (w *watcher) report(ctx context.Context, res store.Resource) error {
	d := maphash.Bytes(w.seed, res.Spec)
	old, ok := w.known[res.Key]
	if ok && old == d {
		return nil
	}
	w.known[res.Key] = d
	if !ok {
		w.index(res.Key)
	}
	if w.silent {
		if w.listed != nil {
			w.listed[res.Key] = res
		}
		return nil
	}
	return w.send(ctx, source.Upsert(res))
}

// forget reports the deletion of the registration at p, if any.
func (w *watcher) forget(ctx context.Context, p string) error {
	if _, ok := w.known[p]; !ok {
		return nil
	}
	delete(w.known, p)
	delete(w.listed, p)
	w.unindex(p)
	if w.silent {
		return nil
	}
	return w.send(ctx, source.Delete(discovery.KindRegistration, p))
}

// dropPrefix forgets every registration at or under p.
func (w *watcher) dropPrefix(ctx context.Context, p string) error {
	for _, k := range w.knownUnder(p, nil) {
		if err := w.forget(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// dropMissing forgets the registrations under p whose child of p is not
// among names.
func (w *watcher) dropMissing(ctx context.Context, p string, names []string) error {
	if len(w.below[p]) == 0 {
		return nil
	}
	present := make(map[string]struct{}, len(names))
	for _, n := range names {
		present[n] = struct{}{}
	}
	for _, child := range slices.Sorted(maps.Keys(w.below[p])) {
		if _, ok := present[child]; !ok {
			if err := w.dropPrefix(ctx, path.Join(p, child)); err != nil {
				return err
			}
		}
	}
	return nil
}

// knownUnder appends the known paths at or under p to out, sorted.
func (w *watcher) knownUnder(p string, out []string) []string {
	if _, ok := w.known[p]; ok {
		out = append(out, p)
	}
	for _, child := range slices.Sorted(maps.Keys(w.below[p])) {
		out = w.knownUnder(path.Join(p, child), out)
	}
	return out
}

// index records the known path k in below, up to the first ancestor that
// already leads to a known registration.
func (w *watcher) index(k string) {
	for p := k; p != "/" && p != "."; p = path.Dir(p) {
		dir, name := path.Dir(p), path.Base(p)
		names := w.below[dir]
		if names == nil {
			names = map[string]struct{}{}
			w.below[dir] = names
		}
		if _, ok := names[name]; ok {
			return
		}
		names[name] = struct{}{}
	}
}

// unindex removes the forgotten path k from below, and each ancestor that
// no longer leads to a known registration.
func (w *watcher) unindex(k string) {
	for p := k; p != "/" && p != "."; p = path.Dir(p) {
		if _, ok := w.known[p]; ok || len(w.below[p]) > 0 {
			return
		}
		dir := path.Dir(p)
		delete(w.below[dir], path.Base(p))
		if len(w.below[dir]) > 0 {
			return
		}
		delete(w.below, dir)
	}
}

func (w *watcher) send(ctx context.Context, c source.Change) error {
	select {
	case w.out <- c:
		return nil
	case <-ctx.Done():
		return errStopping
	case <-w.r.done:
		return errStopping
	}
}
