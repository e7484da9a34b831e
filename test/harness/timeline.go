package harness

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Interval is one stretch during which a replica ran leader components of
// one term. A zero Stop means it is still running.
type Interval struct {
	Replica   string
	Component string
	Term      int64
	Holder    string
	Start     time.Time
	Stop      time.Time
}

func (iv Interval) String() string {
	stop := "running"
	if !iv.Stop.IsZero() {
		stop = iv.Stop.Format("15:04:05.000000")
	}
	return fmt.Sprintf("%s/%s term %d [%s, %s]", iv.Replica, iv.Component, iv.Term, iv.Start.Format("15:04:05.000000"), stop)
}

func (iv Interval) overlaps(o Interval) bool {
	aEnds := iv.Stop.IsZero() || o.Start.Before(iv.Stop)
	bEnds := o.Stop.IsZero() || iv.Start.Before(o.Stop)
	return aEnds && bEnds
}

// Timeline collects Intervals; it is safe for concurrent use.
type Timeline struct {
	mu        sync.Mutex
	intervals []Interval
}

// Begin records the start of an interval and returns the function that
// records its stop.
func (t *Timeline) Begin(iv Interval) (stop func(at time.Time)) {
	t.mu.Lock()
	idx := len(t.intervals)
	t.intervals = append(t.intervals, iv)
	t.mu.Unlock()
	return func(at time.Time) {
		t.mu.Lock()
		t.intervals[idx].Stop = at
		t.mu.Unlock()
	}
}

// Add records a finished (or running) interval.
func (t *Timeline) Add(iv Interval) {
	t.mu.Lock()
	t.intervals = append(t.intervals, iv)
	t.mu.Unlock()
}

// Intervals returns a copy of what was recorded, by start.
func (t *Timeline) Intervals() []Interval {
	t.mu.Lock()
	out := slices.Clone(t.intervals)
	t.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	return out
}

// Terms returns the distinct terms recorded, ascending.
func (t *Timeline) Terms() []int64 {
	var terms []int64
	for _, iv := range t.Intervals() {
		if !slices.Contains(terms, iv.Term) {
			terms = append(terms, iv.Term)
		}
	}
	slices.Sort(terms)
	return terms
}

// Check reports every pair of intervals of different terms that overlap,
// leaving out the exempt terms (a leader behind SIGSTOP keeps running its
// components, frozen, after its successor began: that case is covered by
// the write log instead).
func (t *Timeline) Check(exempt ...int64) error {
	return CheckIntervals(t.Intervals(), exempt...)
}

// CheckIntervals is Timeline.Check on a list of intervals.
func CheckIntervals(ivs []Interval, exempt ...int64) error {
	var bad []string
	for i, a := range ivs {
		if slices.Contains(exempt, a.Term) {
			continue
		}
		for _, b := range ivs[i+1:] {
			if b.Term == a.Term || slices.Contains(exempt, b.Term) {
				continue
			}
			if a.overlaps(b) {
				bad = append(bad, a.String()+" overlaps "+b.String())
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("harness: leader components of different terms ran at once:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}
