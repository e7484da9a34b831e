package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// durations is a sample of measured durations.
type durations []time.Duration

// quantile is the nearest-rank q-quantile (q in (0, 1]): with 20 samples
// p99 is the largest, said as it is rather than interpolated.
func (d durations) quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(rank, len(s)-1))]
}

func (d durations) max() time.Duration { return slices.Max(d) }

// secs formats a duration in seconds with millisecond digits.
func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// short picks secs or ms by size.
func short(d time.Duration) string {
	if d >= time.Second {
		return secs(d)
	}
	return ms(d)
}

// p50p99max formats a failover sample.
func p50p99max(d durations) string {
	return fmt.Sprintf("%s / %s / %s (n=%d)", short(d.quantile(0.5)), short(d.quantile(0.99)), short(d.max()), len(d))
}

// p50p99 formats a sample without its maximum.
func p50p99(d durations) string {
	return fmt.Sprintf("%s / %s (n=%d)", short(d.quantile(0.5)), short(d.quantile(0.99)), len(d))
}

func rate(n int64, over time.Duration) float64 { return float64(n) / over.Seconds() }
