package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/test/harness"
)

// pollEvery is how often the bench asks the replicas for their status. It
// bounds how late a takeover is noticed, not the measured duration: that
// ends at the instant the new leader recorded for its components (see
// runningSince).
const pollEvery = 25 * time.Millisecond

// quiet serialises, across every cluster of the bench, the parts of a round
// that either burn CPU (a restart: a Go process starting) or measure
// milliseconds (a takeover through the session lock, a graceful handover).
// The clusters run side by side to keep the bench short; without quiet a
// restart in one cluster landed inside another's millisecond window on this
// 2-core machine, and the tail measured the bench rather than the election.
// Crash rounds that wait for a lease or an etcd session to expire (seconds)
// do not take it: their floor dwarfs that noise.
var quiet sync.Mutex

// trace (BENCH_TRACE=1) prints each round's split: action → the new leader
// Leading (the election) and Leading → its components Running (the
// runtime).
var trace = os.Getenv("BENCH_TRACE") == "1"

var statusClient = &http.Client{Timeout: 2 * time.Second}

// status reads /api/v1/status of replica i (no database access on the
// replica's side, unlike /api/v1/leader).
func status(ctx context.Context, p *harness.Processes, i int) (runtime.Status, error) {
	var st runtime.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Process(i).URL()+"/api/v1/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("replica %d: /api/v1/status: %s", i, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// runningSince is the instant the last of the leader components of a
// Leading replica entered Running in this term, as the replica recorded it;
// ok is false unless the replica leads and every leader component runs.
func runningSince(st runtime.Status) (at time.Time, ok bool) {
	if st.Role != runtime.RoleLeading {
		return time.Time{}, false
	}
	n := 0
	for _, c := range st.Components {
		if !c.LeaderOnly {
			continue
		}
		if c.State != runtime.ComponentRunning || c.Since.Before(st.Since) {
			return time.Time{}, false
		}
		n++
		if c.Since.After(at) {
			at = c.Since
		}
	}
	return at, n > 0
}

// settled waits until exactly one live replica leads with every leader
// component running and every other live replica is a Candidate.
func settled(ctx context.Context, p *harness.Processes) (leaderIdx int, term int64, err error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var last error
	for {
		leaderIdx, term, last = -1, 0, nil
		candidates, alive := 0, 0
		for i := range p.N() {
			if !p.Process(i).Alive() {
				continue
			}
			alive++
			st, err := status(ctx, p, i)
			if err != nil {
				last = err
				break
			}
			if _, ok := runningSince(st); ok {
				if leaderIdx >= 0 {
					last = errors.New("two replicas lead")
				}
				leaderIdx, term = i, st.Term.Number
			} else if st.Role == runtime.RoleCandidate {
				candidates++
			}
		}
		if last == nil && leaderIdx >= 0 && candidates == alive-1 {
			return leaderIdx, term, nil
		}
		select {
		case <-ctx.Done():
			return -1, 0, fmt.Errorf("cluster never settled (last: %v): %w", last, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// takeover waits until a live replica other than old leads a term other
// than oldTerm with its leader components running, and returns the instant
// they were all running and the instant the replica entered Leading.
func takeover(ctx context.Context, p *harness.Processes, old int, oldTerm int64) (running, leading time.Time, err error) {
	return pollTakeover(ctx, p.N(), old, oldTerm, func(i int) (runtime.Status, bool) {
		if !p.Process(i).Alive() {
			return runtime.Status{}, false
		}
		st, err := status(ctx, p, i)
		return st, err == nil
	})
}

// pollTakeover polls status(i) of every replica but old, every pollEvery,
// until one leads a term other than oldTerm with its leader components
// running; status reports false for a replica that cannot answer.
func pollTakeover(ctx context.Context, n, old int, oldTerm int64, status func(i int) (runtime.Status, bool)) (running, leading time.Time, err error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		for i := range n {
			if i == old {
				continue
			}
			if st, ok := status(i); ok {
				if at, ok := runningSince(st); ok && st.Term.Number != oldTerm {
					return at, st.Since, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, time.Time{}, fmt.Errorf("no takeover: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// cluster starts n replica processes with timings tm on a fresh database of
// dialect; the returned stop kills them and drops the database.
func (b *bench) cluster(ctx context.Context, dialect string, n int, tm leader.Config, name string) (*harness.Processes, func(), error) {
	db, drop, err := b.provision(ctx, dialect)
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(b.tmp, dialect+"-"+name)
	src, err := harness.NewSource(filepath.Join(dir, "source"))
	if err == nil {
		err = src.Put("instances.yaml", harness.Instances("bench", "app", 20)...)
	}
	if err != nil {
		drop()
		return nil, nil, err
	}
	p, err := harness.StartProcesses(ctx, n, harness.ProcessConfig{
		Binary: b.binary, Database: db, Source: src, Dir: dir, Leader: tm,
	})
	if err != nil {
		drop()
		return nil, nil, err
	}
	return p, func() { _ = p.Close(); drop() }, nil
}

// failoverRounds runs rounds of: wait for a settled cluster, act on the
// leader (kill -9 or SIGTERM), measure until the new leader's components
// run, start the old leader's slot again.
//
// The action comes at a random instant within two retry periods after the
// cluster settled, so that it falls at a random phase of the leader's
// renewals and of the followers' polls (otherwise every round would strike
// at the same distance from the leader's last renew, which the previous
// round's timing fixes). After a kill, the dead leader's lease row is read
// to learn when it expires and on which path its term was.
func failoverRounds(ctx context.Context, p *harness.Processes, rounds int, tm leader.Config, graceful bool) (f failovers, err error) {
	lease, err := leader.NewLease(p.Observer())
	if err != nil {
		return f, err
	}
	for range rounds {
		if err := f.round(ctx, p, lease, tm, graceful); err != nil {
			return f, err
		}
	}
	return f, nil
}

// failovers holds one sample per round of failoverRounds.
type failovers struct {
	took        durations // action → the new leader's components running
	afterExpiry durations // crash on the lease path: the dead lease's expiry → running
	// struck says, per crash round, the dead leader's row right after the
	// kill: its path and lock window ("" when the row had moved on).
	struck []string
}

func (f *failovers) round(ctx context.Context, p *harness.Processes, lease *leader.Lease, tm leader.Config, graceful bool) error {
	ctx, cancel := context.WithTimeout(ctx, 3*tm.LeaseDuration+30*time.Second)
	defer cancel()
	li, term, err := settled(ctx, p)
	if err != nil {
		return err
	}
	time.Sleep(rand.N(2 * tm.RetryPeriod))
	exclusive := graceful || tm.FastFailover
	if exclusive {
		quiet.Lock()
	}
	t0 := time.Now()
	if graceful {
		err = p.Term(li)
	} else {
		err = p.Kill(li)
	}
	var expiry time.Time
	if err == nil && !graceful {
		var struck string
		expiry, struck = expiresAt(ctx, lease, term)
		f.struck = append(f.struck, struck)
	}
	var at, leading time.Time
	if err == nil {
		at, leading, err = takeover(ctx, p, li, term)
	}
	if exclusive {
		quiet.Unlock()
	}
	if err != nil {
		return err
	}
	f.took = append(f.took, at.Sub(t0))
	if trace {
		progress("round %d (%s, graceful %v): leading after %v, running %v later", len(f.took), tm.Name, graceful, leading.Sub(t0), at.Sub(leading))
	}
	if !expiry.IsZero() {
		f.afterExpiry = append(f.afterExpiry, at.Sub(expiry))
	}
	select {
	case <-p.Process(li).Exited():
	case <-ctx.Done():
		return fmt.Errorf("replica %d did not exit after SIGTERM", li)
	}
	quiet.Lock()
	defer quiet.Unlock()
	return p.Restart(ctx, li)
}

// noteSlowCrashes notes the crash rounds of f that took longer than limit,
// with what the dead leader's row said of its term then (a grown lock
// window, a lease-only term), under the heading what.
func (b *bench) noteSlowCrashes(what string, f failovers, limit time.Duration) {
	var slow []string
	for i, d := range f.took {
		if d > limit && i < len(f.struck) {
			slow = append(slow, fmt.Sprintf("round %d: %s (%s)", i+1, short(d), cmp.Or(f.struck[i], "row moved on before it was read")))
		}
	}
	if len(slow) > 0 {
		b.note("%s: crash rounds over %s, with the dead leader's term as its row said right after the kill: %s", what, short(limit), strings.Join(slow, "; "))
	}
}

// expiresAt reads the lease of a dead leader of term and returns when it
// expires, on the local clock (the database's clock read at the same time
// gives the offset), and the term's failover path as the row says; the zero
// time when the row has moved on already.
func expiresAt(ctx context.Context, lease *leader.Lease, term int64) (time.Time, string) {
	before := time.Now()
	rec, err := lease.Get(ctx, harness.Election)
	mid := before.Add(time.Since(before) / 2)
	if err != nil || rec.Term != term {
		return time.Time{}, ""
	}
	struck := rec.Path
	if rec.Path == leader.PathLockFenced {
		struck += ", lock window " + rec.LockWindow.String()
	}
	return rec.ExpiresAt.Add(mid.Sub(rec.Now)), struck
}

// withExpiry formats a crash failover sample and its part after the lease
// expired.
func withExpiry(d, after durations) string {
	s := p50p99max(d)
	if len(after) > 0 {
		s += fmt.Sprintf("; expiry → running %s / %s", short(after.quantile(0.5)), short(after.max()))
	}
	return s
}

// rss reads VmRSS of pid, in bytes.
func rss(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

// processTimings measures crash failover, graceful handover and (with the
// default timings) resident memory on a 3-process cluster.
func (b *bench) processTimings(ctx context.Context, dialect string, tm leader.Config, name string) error {
	p, stop, err := b.cluster(ctx, dialect, 3, tm, name)
	if err != nil {
		return err
	}
	defer stop()
	crash, err := failoverRounds(ctx, p, b.rounds, tm, false)
	if err != nil {
		return fmt.Errorf("crash failover, %s timings, after %d rounds: %w", name, len(crash.took), err)
	}
	after := crash.afterExpiry
	if tm.FastFailover {
		after = nil // the takeover comes before the lease expires: no expiry → running
		// A round well past the lock window's takeover wait: what the
		// dead leader's row said of its term says why.
		limit := 3 * tm.LockWindow / 2
		if dialect == database.SQLite {
			limit = 50 * time.Millisecond
		}
		b.noteSlowCrashes(fmt.Sprintf("%s, %s timings", dialectName(dialect), name), crash, limit)
	}
	b.set(rowCrash+name, dialect, withExpiry(crash.took, after))
	handover, err := failoverRounds(ctx, p, b.rounds, tm, true)
	if err != nil {
		return fmt.Errorf("graceful handover, %s timings, after %d rounds: %w", name, len(handover.took), err)
	}
	b.set(rowHandover+name, dialect, p50p99(handover.took))
	if name != b.rssTimings {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 3*tm.LeaseDuration)
	defer cancel()
	li, _, err := settled(sctx, p)
	if err != nil {
		return err
	}
	time.Sleep(2 * tm.RetryPeriod)
	var lead, follow int64
	for i := range p.N() {
		v, err := rss(p.Process(i).PID())
		if err != nil {
			return err
		}
		if i == li {
			lead = v
		} else {
			follow = max(follow, v)
		}
	}
	b.set(rowRSS, dialect, fmt.Sprintf("%s / %s", mib(lead), mib(follow)))
	return nil
}

func mib(v int64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }

// coldStart measures, on a single-replica cluster whose previous process
// released the lease on SIGTERM, the time from the exec of a new process
// to its leader components running.
func (b *bench) coldStart(ctx context.Context, dialect string) error {
	tm := leader.DefaultConfig()
	tm.Name = harness.Election
	p, stop, err := b.cluster(ctx, dialect, 1, tm, "cold")
	if err != nil {
		return err
	}
	defer stop()
	// The first process ran migrations on an empty database: not counted.
	if err := leadThenTerm(ctx, p, tm); err != nil {
		return err
	}
	var out durations
	for range b.coldRounds {
		sctx, cancel := context.WithTimeout(ctx, 3*tm.LeaseDuration+30*time.Second)
		quiet.Lock()
		t0 := time.Now()
		err := p.Restart(sctx, 0)
		var st runtime.Status
		if err == nil {
			_, _, err = settled(sctx, p)
		}
		quiet.Unlock()
		if err == nil {
			st, err = status(sctx, p, 0)
		}
		cancel()
		if err != nil {
			return err
		}
		at, _ := runningSince(st)
		out = append(out, at.Sub(t0))
		if err := leadThenTerm(ctx, p, tm); err != nil {
			return err
		}
	}
	b.set(rowCold, dialect, fmt.Sprintf("%s / %s (n=%d)", short(out.quantile(0.5)), short(out.max()), len(out)))
	return nil
}

// leadThenTerm waits for the single replica to lead, then stops it with
// SIGTERM (it releases the lease) and waits for it to exit.
func leadThenTerm(ctx context.Context, p *harness.Processes, tm leader.Config) error {
	ctx, cancel := context.WithTimeout(ctx, 3*tm.LeaseDuration+30*time.Second)
	defer cancel()
	if _, _, err := settled(ctx, p); err != nil {
		return err
	}
	if err := p.Term(0); err != nil {
		return err
	}
	select {
	case <-p.Process(0).Exited():
		return nil
	case <-ctx.Done():
		return errors.New("replica did not exit after SIGTERM")
	}
}
