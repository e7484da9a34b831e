package membership

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
)

// Config tunes a Recorder.
type Config struct {
	// Election is the election the replica takes part in.
	Election string
	// Period is the least time between two statements (the election's
	// RetryPeriod); the replica's state is compared with the last written
	// row this often.
	Period time.Duration
	// GoneAfter is the silence after which readers list a replica as gone
	// (the lease duration).
	GoneAfter time.Duration
	// Keepalive is the longest time between two writes; 0 means
	// max(Period, GoneAfter/3), so that two lost writes in a row do not
	// make a live replica look gone.
	Keepalive time.Duration
	// Retention is how long a gone replica stays listed before the next
	// replica to start deletes it; 0 means DefaultRetention.
	Retention time.Duration
	// OpTimeout bounds each statement.
	OpTimeout time.Duration
}

// DefaultRetention is how long a gone replica stays in the table.
const DefaultRetention = 24 * time.Hour

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Election == "" || len(c.Election) > MaxElectionLength:
		return fmt.Errorf("%w: election %q: must be 1..%d bytes", ErrInvalid, c.Election, MaxElectionLength)
	case c.Period <= 0:
		return fmt.Errorf("%w: period is %v: must be positive", ErrInvalid, c.Period)
	case c.GoneAfter <= c.Period:
		return fmt.Errorf("%w: goneAfter (%v) must be greater than period (%v)", ErrInvalid, c.GoneAfter, c.Period)
	case c.Keepalive != 0 && (c.Keepalive < c.Period || c.Keepalive >= c.GoneAfter):
		return fmt.Errorf("%w: keepalive (%v) must be at least period (%v) and less than goneAfter (%v)", ErrInvalid, c.Keepalive, c.Period, c.GoneAfter)
	case c.Retention < 0:
		return fmt.Errorf("%w: retention is %v: must not be negative", ErrInvalid, c.Retention)
	case c.OpTimeout <= 0:
		return fmt.Errorf("%w: opTimeout is %v: must be positive", ErrInvalid, c.OpTimeout)
	}
	return nil
}

func (c Config) keepalive() time.Duration {
	if c.Keepalive != 0 {
		return c.Keepalive
	}
	return max(c.Period, c.GoneAfter/3)
}

func (c Config) retention() time.Duration {
	if c.Retention != 0 {
		return c.Retention
	}
	return DefaultRetention
}

// Recorder keeps one replica's row up to date (see the package doc).
type Recorder struct {
	table *Table
	cfg   Config
	self  func() Member
	log   logr.Logger
}

// NewRecorder returns the recorder of the replica whose state self
// returns; self is called once per Period and must not block.
func NewRecorder(table *Table, cfg Config, self func() Member, log logr.Logger) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Recorder{table: table, cfg: cfg, self: self, log: log.WithValues("election", cfg.Election)}, nil
}

// Run writes the replica's row until ctx ends, then deletes it. A failed
// write is retried at the next Period and logged once per change of cause.
// It returns the error of the final delete, if any.
func (r *Recorder) Run(ctx context.Context) error {
	var (
		last      Member
		written   bool
		lastWrite time.Time
		failing   string
		pruned    bool
	)
	t := time.NewTicker(r.cfg.Period)
	defer t.Stop()
	for {
		m := r.self()
		switch {
		case written && !pruned:
			// The prune takes the second Period: one statement per Period.
			r.prune(ctx)
			pruned = true
		case !written || m != last || time.Since(lastWrite) >= r.cfg.keepalive():
			err := r.op(ctx, func(ctx context.Context) error { return r.table.Upsert(ctx, r.cfg.Election, m) })
			switch {
			case err == nil:
				if failing != "" {
					r.log.Info("replica recorded again", "identity", m.Identity)
					failing = ""
				}
				last, written, lastWrite = m, true, time.Now()
			case ctx.Err() == nil && err.Error() != failing:
				failing = err.Error()
				r.log.Error(err, "cannot record this replica in admin_replicas; retrying", "identity", m.Identity)
			}
		}
		select {
		case <-ctx.Done():
			return r.remove(context.WithoutCancel(ctx), m.Identity)
		case <-t.C:
		}
	}
}

func (r *Recorder) op(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	return f(ctx)
}

func (r *Recorder) prune(ctx context.Context) {
	var n int64
	err := r.op(ctx, func(ctx context.Context) error {
		var err error
		n, err = r.table.Prune(ctx, r.cfg.Election, r.cfg.retention())
		return err
	})
	switch {
	case err != nil && ctx.Err() == nil:
		r.log.Error(err, "cannot prune admin_replicas")
	case n > 0:
		r.log.Info("pruned replicas gone for longer than the retention", "replicas", n, "retention", r.cfg.retention().String())
	}
}

func (r *Recorder) remove(ctx context.Context, identity string) error {
	return r.op(ctx, func(ctx context.Context) error { return r.table.Remove(ctx, r.cfg.Election, identity) })
}
