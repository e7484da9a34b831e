package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// streamSource is a source whose watch is a channel the bench feeds; its
// List is empty.
type streamSource chan source.Change

func (s streamSource) Watch(context.Context) (<-chan source.Change, error) { return s, nil }
func (s streamSource) List(context.Context) ([]store.Resource, error)      { return nil, nil }
func (s streamSource) Stop() error                                         { return nil }

// streamChange is change i of a stream: an instance of key i%keys whose
// spec carries the instant it was handed to the loop.
func streamChange(kind string, i, keys int) source.Change {
	spec := fmt.Sprintf(`{"ip":"10.0.%d.%d","port":20880,"seq":%d,"sent":%d}`, i/256%256, i%256, i, time.Now().UnixNano())
	return source.Upsert(resource(kind, fmt.Sprintf("instance-%05d", i%keys), fmt.Sprintf("app-%d", i%50), spec))
}

// stream runs a source.Loop on s with wctx (fenced or unfenced) and feeds
// it n changes of a fresh kind, every pace (0: as fast as the loop takes
// them). It returns the time from the first change handed over to the
// commit of the last, and each change's latency from hand-over to the
// store's event of its commit.
func stream(ctx, wctx context.Context, s *store.GORM, kind string, n, keys int, pace time.Duration) (time.Duration, durations, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.Subscribe(sctx)
	src := make(streamSource)
	loop := &source.Loop{
		Name:  "bench",
		Open:  func(context.Context) (source.Source, error) { return src, nil },
		View:  func() source.View { return source.Identity(kind) },
		Store: s,
		Log:   logr.Discard(),
	}
	lctx, stopLoop := context.WithCancel(wctx)
	var wg sync.WaitGroup
	var runErr error
	loopDone := make(chan struct{})
	wg.Go(func() {
		defer close(loopDone)
		runErr = loop.Run(lctx)
	})
	defer func() {
		stopLoop()
		cancel()
		wg.Wait()
	}()

	lags := make(durations, 0, n)
	received := make(chan error, 1)
	var last time.Time
	wg.Go(func() {
		for len(lags) < n {
			select {
			case e, ok := <-events:
				if !ok {
					received <- fmt.Errorf("stream: the subscription ended after %d of %d events", len(lags), n)
					return
				}
				if e.Resource.Kind != kind {
					continue
				}
				var spec struct {
					Sent int64 `json:"sent"`
				}
				if err := json.Unmarshal(e.Resource.Spec, &spec); err != nil {
					received <- err
					return
				}
				last = time.Now()
				lags = append(lags, last.Sub(time.Unix(0, spec.Sent)))
			case <-sctx.Done():
				received <- sctx.Err()
				return
			}
		}
		received <- nil
	})

	// Paced: every 10ms, the changes due by then (a ticker of pace would
	// drop ticks on a loaded machine).
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	t0 := time.Now()
	for i := 0; i < n; {
		due := n
		if pace > 0 {
			<-tick.C
			due = min(n, int(time.Since(t0)/pace))
		}
		for ; i < due; i++ {
			select {
			case src <- streamChange(kind, i, keys):
			case <-loopDone:
				return 0, nil, fmt.Errorf("stream: loop ended after %d changes: %w", i, runErr)
			case <-ctx.Done():
				return 0, nil, ctx.Err()
			}
		}
	}
	select {
	case err := <-received:
		if err != nil {
			return 0, nil, err
		}
	case <-loopDone:
		return 0, nil, fmt.Errorf("stream: loop ended before its changes were committed: %w", runErr)
	case <-time.After(5 * time.Minute):
		return 0, nil, fmt.Errorf("stream: %d changes not committed within 5 minutes", n)
	}
	return last.Sub(t0), lags, nil
}

// streamRatio measures the source loop's throughput on a stream of
// b.streamN instance changes, fenced and unfenced alternately, and its
// latency at 1000 changes/s.
func (b *bench) streamRatio(ctx context.Context, dialect string) error {
	o, err := b.openStore(ctx, dialect, store.WithEventBuffer(4*b.streamN))
	if err != nil {
		return err
	}
	defer o.stop()
	s, fenced, unfenced := o.s, o.fenced, o.unfenced
	if _, _, err := stream(ctx, fenced, s, "BenchStreamWarmUp", b.streamN, b.streamN, 0); err != nil {
		return fmt.Errorf("warm-up stream: %w", err)
	}
	var tf, tu time.Duration
	for round := range 2 {
		for _, w := range []struct {
			ctx context.Context
			sum *time.Duration
			tag string
		}{{unfenced, &tu, "unfenced"}, {fenced, &tf, "fenced"}} {
			d, _, err := stream(ctx, w.ctx, s, fmt.Sprintf("BenchStream-%s-%d", w.tag, round), b.streamN, b.streamN, 0)
			if err != nil {
				return fmt.Errorf("%s stream: %w", w.tag, err)
			}
			*w.sum += d
		}
	}
	f, u := rate(int64(2*b.streamN), tf), rate(int64(2*b.streamN), tu)
	b.set(rowStream, dialect, fmt.Sprintf("%.2f (%.0f / %.0f changes/s)", f/u, f, u))

	n := int(b.streamLatFor / time.Millisecond) // 1000 per second
	_, lags, err := stream(ctx, fenced, s, "BenchStreamPaced", n, 1000, time.Millisecond)
	if err != nil {
		return fmt.Errorf("paced stream: %w", err)
	}
	b.set(rowStreamLat, dialect, fmt.Sprintf("%s / %s / %s (n=%d)", ms(lags.quantile(0.5)), ms(lags.quantile(0.99)), ms(lags.max()), len(lags)))
	return nil
}
