package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// watchStatus is `leader status --watch`: it reads the status every retry
// period until a signal (or the command's context) ends it. It builds and
// prepares the election once (openElection; again only while that fails)
// and reads every refresh from it, then closes it. On a terminal
// it redraws the whole view in place; otherwise it prints one line per
// event (-o json: one JSON status per change).
func (c CLI) watchStatus(cmd *cobra.Command, cfg Config, output string) error {
	sigs, stopSignals := c.signals()
	defer stopSignals()
	ctx, cancel := context.WithCancel(cmd.Context())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	out := cmd.OutOrStdout()
	tty := isTerminal(out) && output == "text"
	tick := time.NewTicker(cfg.Election.RetryPeriod.D())
	defer tick.Stop()
	var (
		prev    *LeaseStatus
		lastErr string
	)
	var (
		el      election
		closeEl func()
	)
	defer func() {
		if closeEl != nil {
			closeEl()
		}
	}()
	for {
		readCtx, cancelRead := withTimeout(ctx, cfg)
		var (
			st  LeaseStatus
			err error
		)
		if closeEl == nil {
			el, closeEl, err = openElection(readCtx, cfg)
		}
		if err == nil {
			st, err = readElectionStatus(readCtx, cfg, el)
		}
		cancelRead()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if err.Error() != lastErr {
				fmt.Fprintf(out, "%s cannot read the status: %v\n", stamp(time.Now()), err)
				lastErr = err.Error()
			}
		default:
			lastErr = ""
			switch {
			case tty:
				var buf bytes.Buffer
				_ = printLeaseStatus(&buf, st)
				fmt.Fprintf(out, "\x1b[H\x1b[2J%s\n(watching every %v; Ctrl-C to stop)\n", buf.String(), cfg.Election.RetryPeriod)
			case output == "json":
				if prev == nil || len(statusEvents(*prev, st)) > 0 {
					b, _ := json.Marshal(st)
					fmt.Fprintf(out, "%s\n", b)
				}
			default:
				printStatusEvents(out, prev, st)
			}
			prev = &st
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printStatusEvents prints the first status as one line per replica, then
// one line per change.
func printStatusEvents(w io.Writer, prev *LeaseStatus, st LeaseStatus) {
	now := stamp(time.Now())
	if prev == nil {
		fmt.Fprintf(w, "%s %s\n", now, leaderLine(st))
		for _, r := range st.Replicas {
			fmt.Fprintf(w, "%s replica %s %s\n", now, r.Identity, replicaLine(r))
		}
		return
	}
	for _, e := range statusEvents(*prev, st) {
		fmt.Fprintf(w, "%s %s\n", now, e)
	}
}

func leaderLine(st LeaseStatus) string {
	switch st.State {
	case "held":
		return fmt.Sprintf("leader %s term %d (expires %s)", st.Holder, st.Term, stamp(st.ExpiresAt))
	case "expired":
		return fmt.Sprintf("leader none: the lease of %s (term %d) expired", st.Holder, st.Term)
	case "free":
		return fmt.Sprintf("leader none: the lease is free (last term %d)", st.Term)
	default:
		return fmt.Sprintf("leader none: election %q has never been held", st.Election)
	}
}

func replicaLine(r ReplicaInfo) string {
	s := fmt.Sprintf("at %s: %s", orDash(r.Address), r.Role)
	if r.Term > 0 {
		s += fmt.Sprintf(" term %d", r.Term)
	}
	if r.Gone {
		s = fmt.Sprintf("at %s: gone (not seen for %v, was %s)", orDash(r.Address), roundAge(r.SeenAgo()), r.Role)
	}
	if r.Error != "" {
		s += ": " + r.Error
	}
	return s
}

// statusEvents are the changes from prev to st: the leader, and each
// replica that joined, changed (role, term, gone, error) or left.
func statusEvents(prev, st LeaseStatus) []string {
	var evs []string
	if leaderLineKey(prev) != leaderLineKey(st) {
		evs = append(evs, leaderLine(st))
	}
	before := map[string]ReplicaInfo{}
	for _, r := range prev.Replicas {
		before[r.Identity] = r
	}
	for _, r := range st.Replicas {
		old, ok := before[r.Identity]
		delete(before, r.Identity)
		switch {
		case !ok:
			evs = append(evs, fmt.Sprintf("replica %s joined %s", r.Identity, replicaLine(r)))
		case old.Role != r.Role || old.Term != r.Term || old.Gone != r.Gone || old.Error != r.Error || old.Address != r.Address:
			evs = append(evs, fmt.Sprintf("replica %s %s", r.Identity, replicaLine(r)))
		}
	}
	for _, r := range prev.Replicas {
		if _, left := before[r.Identity]; left {
			evs = append(evs, fmt.Sprintf("replica %s left (stopped gracefully or pruned)", r.Identity))
		}
	}
	return evs
}

func leaderLineKey(st LeaseStatus) string {
	return fmt.Sprintf("%s|%s|%d", st.State, st.Holder, st.Term)
}
