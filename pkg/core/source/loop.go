package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

// ErrWatchEnded: a source closed its change channel while the term was live.
var ErrWatchEnded = errors.New("source watch ended")

// Loop mirrors one source into the store for one term. The zero Resync
// turns periodic relisting off. A Loop holds no state between runs.
type Loop struct {
	// Name names the loop in logs and errors ("discovery", "engine").
	Name string
	// Open opens the term's source.
	Open func(ctx context.Context) (Source, error)
	// View makes the term's view (a fresh one per Run).
	View func() View
	// Store receives the writes, fenced by the Term carried by Run's ctx.
	Store store.ResourceStore
	// Resync is the period of the full relist; 0 disables it.
	Resync time.Duration
	// BatchSize bounds how many store changes one write carries (for a
	// BatchView: how many source changes it holds back) (0:
	// DefaultBatchSize); BatchDelay bounds how long the first of them waits
	// for others before the write (0: DefaultBatchDelay), unless a write is
	// in flight: the next batch fills meanwhile and is handed over when it
	// ends. Each write is one Store.Apply: one fenced transaction, one
	// fence check.
	BatchSize  int
	BatchDelay time.Duration
	Log        logr.Logger
}

// Defaults of Loop's batching: at a stream of changes a write carries up to
// 2000 of them; a lone change is written 20ms after it arrived.
const (
	DefaultBatchSize  = 2000
	DefaultBatchDelay = 20 * time.Millisecond
)

// Run mirrors the source until ctx is cancelled; see the package doc for
// what it returns.
func (l *Loop) Run(ctx context.Context) (err error) {
	if l.Open == nil || l.View == nil || l.Store == nil {
		return fmt.Errorf("%s: sync loop needs Open, View and Store", l.Name)
	}
	if l.Resync < 0 || l.BatchDelay < 0 || l.BatchSize < 0 {
		return fmt.Errorf("%s: resync period %s, batch size %d and batch delay %s must not be negative",
			l.Name, l.Resync, l.BatchSize, l.BatchDelay)
	}
	size, delay := cmp.Or(l.BatchSize, DefaultBatchSize), cmp.Or(l.BatchDelay, DefaultBatchDelay)
	src, err := l.Open(ctx)
	if err != nil {
		return l.end(ctx, fmt.Errorf("%s: open source: %w", l.Name, err))
	}
	defer func() {
		if serr := src.Stop(); serr != nil && err == nil && ctx.Err() == nil {
			err = fmt.Errorf("%s: stop source: %w", l.Name, serr)
		}
	}()

	changes, err := src.Watch(ctx)
	if err != nil {
		return l.end(ctx, fmt.Errorf("%s: watch: %w", l.Name, err))
	}
	view := l.View()
	if err := l.relist(ctx, src, view, true); err != nil {
		return l.end(ctx, err)
	}

	var resync <-chan time.Time
	if l.Resync > 0 {
		t := time.NewTicker(l.Resync)
		defer t.Stop()
		resync = t.C
	}
	// batch holds the store changes not handed to the writer yet; due
	// fires delay after the first of them arrived. One batch at a time is
	// being written (inflight) while the next one fills.
	// A BatchView derives at the end of the batch: added counts the
	// changes it holds back.
	w := startWriter(ctx, l.Store, l.Name)
	defer w.stop()
	var batch []Change
	bv, deferred := view.(BatchView)
	added := 0
	pending := func() int { return len(batch) + added }
	inflight := false
	due := time.NewTimer(delay)
	due.Stop()
	defer due.Stop()
	send := func() {
		due.Stop()
		if deferred {
			batch, added = append(batch, bv.Flush()...), 0
		}
		if len(batch) == 0 {
			return // the changes cancelled out
		}
		w.in <- batch
		batch, inflight = nil, true
	}
	for {
		in, written := changes, w.done
		if inflight && pending() >= size {
			in = nil // full while the writer is busy: the source waits
		}
		if !inflight {
			written = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-written:
			inflight = false
			if err != nil {
				return l.end(ctx, err)
			}
			if pending() > 0 { // it waited for the write: no reason to wait more
				send()
			}
		case c, ok := <-in:
			if !ok {
				cause := src.Stop()
				if cause == nil {
					cause = ErrWatchEnded
				}
				return l.end(ctx, fmt.Errorf("%s: %w", l.Name, cause)) // the next run relists
			}
			if pending() == 0 {
				due.Reset(delay)
			}
			if deferred {
				bv.Add(c)
				added++
			} else {
				batch = append(batch, view.Apply(c)...)
			}
			if !inflight && pending() >= size {
				send()
			}
		case <-due.C:
			if !inflight && pending() > 0 {
				send()
			}
		case <-resync:
			// The relist supersedes what is pending (it is older than the
			// List the relist reads), once the write in flight is done.
			if inflight {
				if err := <-w.done; err != nil {
					return l.end(ctx, err)
				}
				inflight = false
			}
			batch, added = nil, 0 // Reset forgets what a BatchView held back
			due.Stop()
			if err := l.relist(ctx, src, view, false); err != nil {
				return l.end(ctx, err)
			}
		}
	}
}

// writer applies the loop's batches on its own goroutine, one at a time and
// in order, so that the next batch fills while one is written.
type writer struct {
	in   chan []Change // unbuffered: the loop hands a batch over only when idle
	done chan error    // one result per batch
	wg   sync.WaitGroup
}

func startWriter(ctx context.Context, st store.ResourceStore, name string) *writer {
	w := &writer{in: make(chan []Change), done: make(chan error, 1)}
	w.wg.Go(func() {
		for batch := range w.in {
			_, err := st.Apply(ctx, batch)
			if err != nil {
				err = fmt.Errorf("%s: apply %d changes: %w", name, len(batch), err)
			}
			w.done <- err // never blocks: the loop reads it before the next batch
		}
	})
	return w
}

// stop ends the writer once its batch in flight, if any, is done (its
// writes use the term context, so a cancelled term ends them early).
func (w *writer) stop() {
	close(w.in)
	w.wg.Wait()
}

// end turns an error into Run's result: a cancelled term is a clean stop
// whatever failed on the way out.
func (l *Loop) end(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, store.ErrFenced) {
		l.Log.Info("term is over: the store refused a write", "loop", l.Name, "error", err.Error())
	}
	return err
}

// relist lists the source and replaces every kind of the view with it.
func (l *Loop) relist(ctx context.Context, src Source, view View, first bool) error {
	items, err := src.List(ctx)
	if err != nil {
		return fmt.Errorf("%s: list: %w", l.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return err // the term ended: a large registry's Reset would only delay its end
	}
	byKind, err := view.Reset(items)
	if err != nil {
		return fmt.Errorf("%s: list: %w", l.Name, err)
	}
	for _, kind := range view.Kinds() {
		res, err := l.Store.Replace(ctx, kind, byKind[kind])
		if err != nil {
			return fmt.Errorf("%s: replace %s: %w", l.Name, kind, err)
		}
		if first || res != (store.ReplaceResult{}) {
			l.Log.Info("listed", "loop", l.Name, "kind", kind, "items", len(byKind[kind]),
				"added", res.Added, "updated", res.Updated, "deleted", res.Deleted, "resync", !first)
		}
	}
	return nil
}
